from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from .limits import on_login_failed

        # Every failed sign-in (login form, Django admin, POST /api/auth/token/) counts per IP and username.
        user_login_failed.connect(on_login_failed, dispatch_uid="accounts.login_failed_counter")
