from django import forms
from django.utils.translation import gettext_lazy as _


class DismissForm(forms.Form):
    reason = forms.CharField(label=_("Why is this not a conflict?"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class GapDraftForm(forms.Form):
    """Turn a group of unanswered questions into a draft, in a knowledge base the user manages."""

    knowledge_base = forms.ModelChoiceField(label=_("Knowledge base"), queryset=None, empty_label=None)
    title = forms.CharField(label=_("Title"), max_length=300)

    def __init__(self, *args, knowledge_bases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["knowledge_base"].queryset = knowledge_bases


class KnowledgeBaseHealthForm(forms.Form):
    """Checked again by knowledge/kb_settings.py in the service (the one rule, also for other callers)."""

    source_failure_days = forms.IntegerField(
        label=_("Days of failing syncs before a source's documents are stale"), min_value=1, max_value=365,
        help_text=_("A document synced from a SQL or HTTP source is listed under “Needs review” when its source "
                    "has failed for this many days since its last good sync."),
    )
