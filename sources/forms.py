from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AllowedHost, Source, SourceKind

COMMON_FIELDS = ["name", "enabled", "schedule_minutes", "key_field", "title_template", "body_template",
                 "timeout_seconds", "max_records"]


class SourceForm(forms.ModelForm):
    """Credentials are write-only: the field is always rendered empty; leaving it empty keeps
    the stored value."""

    url = forms.URLField(label=_("URL"), max_length=2000, required=False, assume_scheme="https")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        editing = self.instance.pk is not None
        if kind == SourceKind.SQL:
            self.fields["dsn"] = forms.CharField(
                label=_("Connection string (DSN)"),
                required=not editing,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=(
                    _("Stored encrypted. Now: %(hint)s. Leave empty to keep it.") % {"hint": self.instance.dsn_hint}
                    if editing
                    else _(
                        "postgresql://user:password@host:5432/db or mysql://… on a server of the allowlist, or "
                        "sqlite:////path/file.db under the directory the administrator set; stored encrypted."
                    )
                ),
            )
        else:
            self.fields["auth_header_value"] = forms.CharField(
                label=_("Auth header value"),
                required=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=(
                    _("A value is stored (encrypted). Leave empty to keep it.")
                    if editing and self.instance.has_auth_header
                    else _("Optional, e.g. Bearer …; stored encrypted.")
                ),
            )
            if editing and self.instance.has_auth_header:
                self.fields["clear_auth_header"] = forms.BooleanField(label=_("Remove the auth header"), required=False)

    class Meta:
        model = Source
        fields = [*COMMON_FIELDS, "query", "url", "records_path", "auth_header_name"]
        widgets = {
            "body_template": forms.Textarea(attrs={"rows": 8}),
            "query": forms.Textarea(attrs={"rows": 6}),
        }

    def kind_fields(self) -> list[str]:
        if self.kind == SourceKind.SQL:
            return ["dsn", "query"]
        extra = ["clear_auth_header"] if "clear_auth_header" in self.fields else []
        return ["url", "records_path", "auth_header_name", "auth_header_value", *extra]

    def service_fields(self) -> dict:
        names = [*COMMON_FIELDS, *self.kind_fields()]
        return {name: self.cleaned_data.get(name) for name in names if name in self.fields}

    def _post_clean(self):
        # Model validation happens in the service, which knows about the encrypted fields.
        pass


class AllowedHostForm(forms.ModelForm):
    class Meta:
        model = AllowedHost
        fields = ["source_kind", "host", "port", "allow_private_addresses", "note"]
