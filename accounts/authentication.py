from rest_framework import authentication, exceptions

from .backends import demo_accounts_enabled


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF token auth (`Authorization: Token <key>`) that, like the login form, refuses demo
    accounts when DEBUG is off."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if user.is_demo and not demo_accounts_enabled():
            raise exceptions.AuthenticationFailed("Demo accounts are disabled when DEBUG is off.")
        return user, token
