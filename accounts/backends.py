from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied


def demo_accounts_enabled() -> bool:
    return bool(settings.DEBUG)


class DemoAwareModelBackend(ModelBackend):
    """Username/password login that refuses demo accounts unless DEBUG is on, and refuses
    everyone while their IP or username has failed too often (accounts.limits), on every
    sign-in surface, the Django admin's included. Every attempt is counted before its password is
    checked and taken back when it succeeds, so what counts is the failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        from .limits import RateLimited, login_attempt

        ip = request.META.get("REMOTE_ADDR") if request is not None else None
        try:
            # Counted before the password is checked, taken back when it is right.
            take_back = login_attempt(ip=ip, username=username or kwargs.get(self._username_field()))
        except RateLimited:
            raise PermissionDenied from None  # stops every backend
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            take_back()
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD

    def user_can_authenticate(self, user) -> bool:
        if getattr(user, "is_demo", False) and not demo_accounts_enabled():
            return False
        return super().user_can_authenticate(user)
