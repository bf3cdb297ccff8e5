"""The upload form: one or several files (or a .zip), optionally as a new version of a document."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(
        label=gettext_lazy("Files"),
        help_text=gettext_lazy(
            "PDF, Word (.docx), Excel (.xlsx), CSV, HTML, Markdown or text (UTF-8, GBK, GB18030, Big5); "
            "several files at once or a .zip of files."
        ),
    )
    document = forms.ModelChoiceField(
        label=gettext_lazy("Add as a new version of"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("— each file becomes a new document —"),
    )
    change_note = forms.CharField(label=gettext_lazy("Change note"), max_length=500, required=False)

    def __init__(self, *args, documents=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = documents
