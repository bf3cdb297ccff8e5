from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from .backends import demo_accounts_enabled
from .models import Department, Role, User


class LoginForm(auth_forms.AuthenticationForm):
    error_messages = {
        **auth_forms.AuthenticationForm.error_messages,
        "demo_disabled": _("Demo accounts are disabled when DEBUG is off."),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and not demo_accounts_enabled():
            if User.objects.filter(username=username, is_demo=True).exists():
                raise forms.ValidationError(self.error_messages["demo_disabled"], code="demo_disabled")
        return super().clean()


class DepartmentForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = ["name", "name_zh", "code", "parent"]


class UserCreateForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none(), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.EMPLOYEE)

    def __init__(self, *args, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if departments is not None:
            self.fields["department"].queryset = departments

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken."))
        return username

    def clean(self):
        cleaned = super().clean()
        if password := cleaned.get("password"):
            candidate = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class MembershipForm(forms.Form):
    user = forms.ModelChoiceField(label=_("User"), queryset=User.objects.none())
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)

    def __init__(self, *args, users=None, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        if users is not None:
            self.fields["user"].queryset = users
        if departments is not None:
            self.fields["department"].queryset = departments


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, required=False, help_text=_("What the key is for, e.g. “reporting script”.")
    )


class QuotaForm(forms.Form):
    """A department's chat limits: empty means the default from settings, 0 means unlimited."""

    daily_tokens = forms.IntegerField(label=_("Daily token quota"), min_value=0, max_value=10**12, required=False)
    user_requests_per_minute = forms.IntegerField(
        label=_("Requests per minute per user"), min_value=0, max_value=100000, required=False
    )
