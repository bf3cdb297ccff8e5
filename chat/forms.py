from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.policy import is_company_admin
from knowledge.policy import knowledge_base_policy

from .models import Assistant, ModelEndpoint
from .pipeline import DEFAULT_SETTINGS
from .policy import assistant_departments_for, endpoint_policy

SEARCH_MODES = [("hybrid", _("hybrid")), ("bm25", "BM25"), ("dense", _("dense")), ("hybrid_rerank", _("hybrid + rerank"))]


class AssistantForm(forms.ModelForm):
    k = forms.IntegerField(label=_("Sources in the prompt"), min_value=1, max_value=20, initial=DEFAULT_SETTINGS["k"])
    mode = forms.ChoiceField(label=_("Search mode"), choices=SEARCH_MODES, initial="hybrid")

    class Meta:
        model = Assistant
        fields = ["name", "description", "system_prompt", "knowledge_bases", "departments", "endpoint", "active"]
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only knowledge bases the configuring user reads can be attached (searches still run as the asker);
        # attached ones they cannot read are not offered and stay attached (assistant_save).
        self.fields["knowledge_bases"].queryset = knowledge_base_policy.instances_user_has_permission_for(user, "view")
        self.fields["knowledge_bases"].help_text = _("None selected: every knowledge base the asking user may read.")
        self.fields["departments"].queryset = assistant_departments_for(user)
        if is_company_admin(user):
            self.fields["departments"].help_text = _("None selected: everyone may use it.")
        else:
            self.fields["departments"].required = True
            self.fields["departments"].help_text = _("The departments that may use it, among those where you manage knowledge.")
        self.fields["endpoint"].queryset = endpoint_policy.choices_for_assistant(user, self.instance.endpoint_id)
        settings = (self.instance.retrieval_settings or {}) if self.instance.pk else {}
        for key in ("k", "mode"):
            if key in settings:
                self.fields[key].initial = settings[key]

    def retrieval_settings(self) -> dict:
        base = dict(self.instance.retrieval_settings or {}) if self.instance.pk else {}
        base.update({key: self.cleaned_data[key] for key in ("k", "mode")})
        return base


class EndpointForm(forms.ModelForm):
    api_key = forms.CharField(label=_("API key"), required=False, widget=forms.PasswordInput(render_value=False),
                              help_text=_("Stored encrypted. Leave empty to keep the current key."))
    clear_api_key = forms.BooleanField(label=_("Remove the stored API key"), required=False)

    class Meta:
        model = ModelEndpoint
        fields = ["name", "kind", "base_url", "model", "tokenizer_path", "context_window", "max_tokens", "temperature",
                  "connect_timeout_s", "read_timeout_s", "enabled"]

    def clean(self):
        data = super().clean()
        if data.get("kind") == "openai":
            url = (data.get("base_url") or "").strip()
            if not url.startswith(("http://", "https://")):
                self.add_error("base_url", _("Enter the server's base URL, e.g. http://127.0.0.1:8001/v1"))
            if not (data.get("model") or "").strip():
                self.add_error("model", _("Enter the model name the server serves."))
        for field in ("connect_timeout_s", "read_timeout_s"):
            value = data.get(field)
            if value is not None and not 0.1 <= value <= 600:
                self.add_error(field, _("Between 0.1 and 600 seconds."))
        return data
