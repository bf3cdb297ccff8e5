from django import forms
from django.utils.translation import gettext_lazy as _


class DismissForm(forms.Form):
    reason = forms.CharField(label=_("Why is this not a conflict?"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
