"""Errors raised while turning an uploaded file into text.

Each error carries a stable ``code`` that the pipeline stores on the failed version, and a human
message (lazily translated) that the document page shows.
"""

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "encrypted_pdf": _("This PDF is password-protected. Remove the password and upload it again."),
    "encrypted_archive": _("This archive is password-protected. Upload an archive without a password."),
    "corrupt_file": _("The file {name} is damaged or incomplete and cannot be read."),
    "no_text_layer": _(
        "This PDF has no text layer (it looks like a scanned document). "
        "Upload a PDF with selectable text or run OCR on it first."
    ),
    "zip_bomb": _(
        "The file {name} expands to more than the allowed size when unpacked ({detail}). "
        "It was refused as a possible zip bomb."
    ),
    "too_large": _("The file is {size} bytes; the limit is {limit} bytes."),
    "empty": _("The file {name} is empty or contains only whitespace."),
    "binary_as_text": _("The file {name} is named as text but contains binary data."),
    "type_mismatch": _("The file {name} is named {declared} but its content is {actual}."),
    "unsupported_type": _(
        "The file type of {name} is not supported. Supported types: PDF, DOCX, XLSX, CSV, HTML, Markdown, text, ZIP."
    ),
    "undecodable_text": _("The text encoding of {name} could not be recognized."),
}


class IngestionError(Exception):
    """A file that cannot be ingested; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, *, message=None, **params):
        if code not in MESSAGES:
            raise ValueError(f"unknown ingestion error code {code!r}")
        self.code = code
        self.params = params
        template = message if message is not None else MESSAGES[code]
        # Placeholders a caller did not give render as empty text rather than failing.
        self.message = format_lazy(template, **({key: "" for key in _PLACEHOLDERS} | params))
        super().__init__(code)

    def __str__(self) -> str:
        return str(self.message)

    def __repr__(self) -> str:
        return f"IngestionError({self.code!r}, {self.params!r})"


_PLACEHOLDERS = ("name", "detail", "size", "limit", "declared", "actual")
