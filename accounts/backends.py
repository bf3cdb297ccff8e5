from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied


def demo_accounts_enabled() -> bool:
    return bool(settings.DEBUG)


class DemoAwareModelBackend(ModelBackend):
    """Username/password login that refuses demo accounts unless DEBUG is on, and refuses
    everyone while their IP or username has failed too often (accounts.limits), on every
    sign-in surface, the Django admin's included."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        from .limits import RateLimited, login_guard

        ip = request.META.get("REMOTE_ADDR") if request is not None else None
        try:
            login_guard(ip=ip, username=username or kwargs.get(self._username_field()))
        except RateLimited:
            raise PermissionDenied from None  # stops every backend; counted by user_login_failed
        return super().authenticate(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD

    def user_can_authenticate(self, user) -> bool:
        if getattr(user, "is_demo", False) and not demo_accounts_enabled():
            return False
        return super().user_can_authenticate(user)
