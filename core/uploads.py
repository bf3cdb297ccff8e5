"""Upload handling that never writes more of a file to disk than the product accepts.

Django's default handler writes every uploaded file whole to a temporary file before any view can
look at its size, so a request with a 10 GB file fills the disk first and is refused after. This
handler writes at most UPLOAD_MAX_BYTES of each file; the rest is read off the request and
dropped, and the file's `size` stays the size that was sent. Every upload surface refuses a file
over UPLOAD_MAX_BYTES by its size, with its own message, so a truncated file is never read.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.written = 0

    def receive_data_chunk(self, raw_data, start):
        room = int(settings.UPLOAD_MAX_BYTES) - self.written
        if room > 0:
            kept = raw_data[:room]
            self.file.write(kept)
            self.written += len(kept)
        return None  # the size Django records (file_complete) still counts every byte sent
