"""Signals other apps may listen to without knowledge importing them."""

from django.dispatch import Signal

# Sent after chunks became searchable or stopped being (a version went live, a document was
# archived): kwargs `added` and `removed`, lists of chunk ids. Knowledge health listens.
searchable_chunks_changed = Signal()
