from __future__ import annotations

import os

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Department
from core.audit import AuditAction

from .ingestion.detect import decode_text, detect
from .ingestion.errors import IngestionError
from .models import DocumentState

# Other formats (PDF, Word, HTML) come with the ingestion pipeline.
UPLOAD_EXTENSIONS = {".md", ".markdown", ".txt"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class TagsField(forms.CharField):
    """Comma-separated tags (Latin or Chinese commas) in, a list of unique tags out."""

    def to_python(self, value):
        value = super().to_python(value) or ""
        tags: list[str] = []
        for tag in value.replace("，", ",").split(","):
            tag = tag.strip()[:64]
            if tag and tag not in tags:
                tags.append(tag)
        return tags

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, (list, tuple)) else value


class OptionalJSONField(forms.JSONField):
    """Empty stays empty (not the text "null"): the service then keeps its defaults."""

    def prepare_value(self, value):
        return "" if value in (None, "") else super().prepare_value(value)


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
    department = forms.ModelChoiceField(label=_("Owning department"), queryset=Department.objects.none())
    review_required = forms.BooleanField(label=_("Publishing needs a review"), required=False, initial=True)
    self_approval_role = forms.ChoiceField(
        label=_("Who may approve their own changes"), required=False, initial="",
        choices=[("", _("Nobody (four eyes)")), ("admin", _("Admin")), ("knowledge_manager", _("Knowledge manager")),
                 ("compliance_reviewer", _("Compliance reviewer"))],
    )
    shared_company_wide = forms.BooleanField(label=_("Shared company-wide"), required=False)
    shared_with = forms.ModelMultipleChoiceField(
        label=_("Shared with departments"), queryset=Department.objects.none(), required=False
    )
    chunk_settings = OptionalJSONField(
        label=_("Chunking settings (JSON)"), required=False, widget=forms.TextInput,
        help_text=_("Empty: the defaults, {\"chunk_tokens\": 256, \"overlap_tokens\": 32}."),
    )
    retrieval_settings = OptionalJSONField(
        label=_("Retrieval settings (JSON)"), required=False, widget=forms.TextInput,
        help_text=_("Empty: the defaults of the embedding model."),
    )

    def __init__(self, *args, departments=None, all_departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments
        if all_departments is not None:
            self.fields["shared_with"].queryset = all_departments


def read_text_upload(upload) -> str:
    """The text of an uploaded .md/.txt file, or a ValidationError for anything else."""
    extension = os.path.splitext(upload.name or "")[1].lower()
    if extension not in UPLOAD_EXTENSIONS:
        raise forms.ValidationError(
            _("Only .md and .txt files can be uploaded here; other formats come with ingestion."), code="file_type"
        )
    if upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError(_("The file is larger than 5 MB."), code="file_size")
    raw = upload.read()
    upload.seek(0)
    # The same detection as ingestion: UTF-8/UTF-16 by BOM or strict decoding, then GBK, GB18030
    # and Big5 scored by common Chinese characters; binary or undecodable bytes are refused.
    try:
        detect(raw, upload.name or "upload.txt")
        text, _encoding = decode_text(raw, upload.name or "")
    except IngestionError as exc:
        raise forms.ValidationError(str(exc.message), code=exc.code) from None
    return text


class _ContentMixin:
    """Content comes from the textarea, or from an uploaded file that replaces it."""

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload:
            try:
                cleaned["content"] = read_text_upload(upload).replace("\r\n", "\n")
            except forms.ValidationError as exc:
                self.add_error("file", exc)
        elif not (cleaned.get("content") or "").strip() and "content" not in self.errors:
            self.add_error("content", _("Write some content or upload a file."))
        return cleaned


class DocumentCreateForm(_ContentMixin, forms.Form):
    title = forms.CharField(label=_("Title"), max_length=300)
    tags = TagsField(label=_("Tags"), required=False, help_text=_("Separated by commas."))
    review_by = forms.DateField(
        label=_("Review by"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    content = forms.CharField(
        label=_("Content (Markdown)"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 18})
    )
    file = forms.FileField(label=_("Or upload a .md or .txt file"), required=False)
    change_note = forms.CharField(label=_("Change note"), max_length=500, required=False)


class DocumentEditForm(_ContentMixin, forms.Form):
    base_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    content = forms.CharField(
        label=_("Content (Markdown)"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 22})
    )
    file = forms.FileField(label=_("Replace the content with a .md or .txt file"), required=False)
    change_note = forms.CharField(label=_("Change note"), max_length=500, required=False)


class DocumentMetadataForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=300)
    tags = TagsField(label=_("Tags"), required=False, help_text=_("Separated by commas."))
    review_by = forms.DateField(
        label=_("Review by"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


SORT_CHOICES = [
    ("-updated_at", _("Recently updated")),
    ("updated_at", _("Least recently updated")),
    ("title", _("Title A–Z")),
    ("-title", _("Title Z–A")),
    ("review_by", _("Review-by date")),
    ("state", _("State")),
]
PAGE_SIZES = [20, 50, 100]


class DocumentFilterForm(forms.Form):
    q = forms.CharField(label=_("Title"), required=False, max_length=200)
    tag = forms.CharField(label=_("Tag"), required=False, max_length=64)
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any state"))] + DocumentState.choices)
    order = forms.ChoiceField(label=_("Sort"), required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(
        label=_("Per page"), required=False, coerce=int, choices=[(n, n) for n in PAGE_SIZES], empty_value=PAGE_SIZES[0]
    )


class ArchiveForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it archived?"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )


class RestoreForm(forms.Form):
    reason = forms.CharField(label=_("Why is it restored?"), required=False, max_length=1000)


class ReviewDecisionForm(forms.Form):
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


AUDIT_ACTION_CHOICES = [
    (AuditAction.CREATE, _("Create")),
    (AuditAction.EDIT, _("Edit")),
    (AuditAction.SUBMIT, _("Submit")),
    (AuditAction.APPROVE, _("Approve")),
    (AuditAction.REQUEST_CHANGES, _("Request changes")),
    (AuditAction.PUBLISH, _("Publish")),
    (AuditAction.ROLLBACK, _("Rollback")),
    (AuditAction.ARCHIVE, _("Archive")),
    (AuditAction.RESTORE, _("Restore")),
    (AuditAction.DOWNLOAD, _("Download")),
    (AuditAction.PERMISSION_CHANGE, _("Permission change")),
    (AuditAction.PURGE, _("Purge")),
    (AuditAction.DELETE, _("Delete")),
    ("edit_lock_break", _("Edit lock broken")),
    ("edit_lock_takeover", _("Edit lock taken over")),
    ("source_sync", _("Source sync requested")),
    ("source_sync_finished", _("Source sync finished")),
    ("ingest_retry", _("Ingestion retried")),
    ("embedding_rebuild", _("Embeddings rebuilt")),
    ("rotate_credentials", _("Credentials rotated")),
    ("fine_tuning_job_create", _("Fine-tuning job created")),
    ("fine_tuning_job_cancel", _("Fine-tuning job cancelled")),
    ("fine_tuning_job_resume", _("Fine-tuning job resumed")),
    ("model_version_create", _("Model version created")),
    ("model_version_activate", _("Model version activated")),
    ("model_version_activate_override", _("Model version activated (gate overridden)")),
    ("model_version_deactivate", _("Model version deactivated")),
    ("model_version_restore", _("Model version restored")),
    ("evaluation_create", _("Evaluation created")),
]
AUDIT_ACTION_LABELS = dict(AUDIT_ACTION_CHOICES)


class ComplianceFilterForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    author = forms.CharField(label=_("Author (username)"), required=False, max_length=150)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none(), required=False)
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", _("Any action"))] + AUDIT_ACTION_CHOICES
    )

    def __init__(self, *args, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments
