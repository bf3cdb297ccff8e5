from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import Department

FORMAT_CHOICES = [
    ("auto", _("Detect from the fields")),
    ("alpaca", _("Alpaca (instruction / input / output)")),
    ("sharegpt", _("ShareGPT conversations")),
    ("openai", _("OpenAI chat messages")),
    ("qa", _("Question / answer pairs")),
]


def read_upload(upload) -> bytes:
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise forms.ValidationError(
            _("The file is larger than the upload limit (%(limit)s bytes).") % {"limit": settings.UPLOAD_MAX_BYTES}
        )
    return upload.read()


class DatasetUploadForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, initial="auto")
    file = forms.FileField(label=_("File (.jsonl or .csv)"))

    def __init__(self, *args, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments


class FeedbackDatasetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    include_thumbs_up = forms.BooleanField(label=_("Also answers rated helpful"), required=False)

    def __init__(self, *args, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments


class VersionUploadForm(forms.Form):
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, initial="auto")
    file = forms.FileField(label=_("File (.jsonl or .csv)"))


class CleaningForm(forms.Form):
    exact_duplicates = forms.BooleanField(label=_("Remove exact duplicates"), required=False, initial=True)
    near_duplicates = forms.BooleanField(label=_("Remove near duplicates (MinHash, character 3-grams)"), required=False, initial=True)
    near_threshold = forms.FloatField(label=_("Near-duplicate similarity threshold"), min_value=0.3, max_value=1.0, initial=0.8)
    min_answer_tokens = forms.IntegerField(label=_("Minimum answer length (tokens, 0 = off)"), min_value=0, max_value=100000, initial=0)
    max_tokens = forms.IntegerField(label=_("Maximum conversation length (tokens, 0 = off)"), min_value=0, max_value=1000000, initial=0)
    mask_pii = forms.BooleanField(label=_("Mask personal data (mobile numbers, ID numbers, e-mail, bank cards)"), required=False)


class AugmentForm(forms.Form):
    method = forms.ChoiceField(label=_("Method"), choices=[
        ("synonym", _("Synonym replacement (Chinese and English)")),
        ("paraphrase", _("Paraphrase through the model endpoint")),
        ("back_translation", _("Back-translation through the model endpoint")),
    ])
    copies = forms.IntegerField(label=_("New rows per row"), min_value=1, max_value=5, initial=1)
    seed = forms.IntegerField(label=_("Seed"), min_value=0, max_value=2**31 - 1, initial=0)


class KnowledgeDatasetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    knowledge_bases = forms.ModelMultipleChoiceField(
        label=_("Knowledge bases (none selected: all you may read)"), queryset=None, required=False
    )
    since = forms.DateTimeField(
        label=_("Only documents changed since (incremental training; empty: all)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    use_model = forms.BooleanField(label=_("Generate with the model endpoint when one is configured"), required=False, initial=True)

    def __init__(self, *args, departments=None, knowledge_bases=None, model_versions=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments
        self.fields["knowledge_bases"].queryset = knowledge_bases
        if model_versions is not None:
            self.fields["since_model"] = forms.ModelChoiceField(
                label=_("Or: only documents changed since this model version was trained"),
                queryset=model_versions, required=False,
            )


class DistillationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    teacher = forms.ModelChoiceField(label=_("Teacher (a model endpoint)"), queryset=None,
                                     empty_label=None)
    prompts = forms.CharField(label=_("Prompts, one per line"), widget=forms.Textarea(attrs={"rows": 6}), required=False)
    prompts_file = forms.FileField(label=_("Or a text file of prompts, one per line"), required=False)
    prompts_from = forms.ModelChoiceField(
        label=_("Or the questions of a dataset version (e.g. QA pairs built from the knowledge base)"),
        queryset=None, required=False,
    )
    system_prompt = forms.CharField(label=_("System prompt (optional)"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
    max_tokens = forms.IntegerField(label=_("Maximum tokens per answer"), min_value=1, max_value=32768, initial=512)

    def __init__(self, *args, departments, teachers, dataset_versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments
        self.fields["teacher"].queryset = teachers
        self.fields["prompts_from"].queryset = dataset_versions

    def clean_prompts_file(self):
        upload = self.cleaned_data.get("prompts_file")
        if not upload:
            return []
        content = read_upload(upload)
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return content.decode(encoding).splitlines()
            except UnicodeDecodeError:
                continue
        raise forms.ValidationError(_("The file is neither UTF-8 nor GB18030 text."))


class PreviewForm(forms.Form):
    max_length = forms.IntegerField(min_value=8, max_value=131072, required=False, initial=1024)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, required=False, initial=42)
    validation_ratio = forms.FloatField(min_value=0.01, max_value=0.9, required=False, initial=0.1)
    page = forms.IntegerField(min_value=1, required=False, initial=1)

    def values(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {name: data.get(name) or field.initial for name, field in self.fields.items()}
