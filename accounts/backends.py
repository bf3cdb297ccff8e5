from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def demo_accounts_enabled() -> bool:
    return bool(settings.DEBUG)


class DemoAwareModelBackend(ModelBackend):
    """Username/password login that refuses demo accounts unless DEBUG is on."""

    def user_can_authenticate(self, user) -> bool:
        if getattr(user, "is_demo", False) and not demo_accounts_enabled():
            return False
        return super().user_can_authenticate(user)
