from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .backends import demo_accounts_enabled
from .models import ApiKey

# Recording every use would write a row per request; once a minute is enough to show "last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_from_header(header: str | bytes) -> str | None:
    """The key in `Authorization: Bearer <key>` (OpenAI clients) or `Token <key>` (DRF style);
    None when the header is another scheme. Raises AuthenticationFailed when it is malformed."""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    parts = header.split()
    if not parts or parts[0].lower() not in ("bearer", "token"):
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(_("Invalid Authorization header: send “Bearer <API key>”."))
    return parts[1]


def api_key_user(key: str):
    """The active user owning the active key `key`, and the key row; AuthenticationFailed otherwise."""
    from .services import api_key_digest

    if len(key) > 200:
        raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
    api_key = ApiKey.objects.select_related("user").filter(digest=api_key_digest(key)).first()
    if api_key is None or api_key.revoked_at is not None:
        raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
    user = api_key.user
    if not user.is_active:
        raise exceptions.AuthenticationFailed(_("This account is disabled."))
    if user.is_demo and not demo_accounts_enabled():
        raise exceptions.AuthenticationFailed(_("Demo accounts are disabled when DEBUG is off."))
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return user, api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Per-user API keys, stored hashed, for the REST API and /v1.

    Accepts `Authorization: Bearer <key>` and `Authorization: Token <key>`. Like the login form,
    refuses demo accounts when DEBUG is off.
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        key = api_key_from_header(header)
        if key is None:
            return None
        return api_key_user(key)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the key in the OpenAPI schema as HTTP bearer auth."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key from POST /api/auth/token/ or the profile page: "
            "`Authorization: Bearer <key>` (`Authorization: Token <key>` is accepted too).",
        }
