"""Encryption at rest for source credentials (DSNs, auth headers).

The Fernet key comes from SOURCES_ENCRYPTION_KEY (environment or settings) when set, else it is
derived from SECRET_KEY; rotating either makes stored credentials unreadable, and a sync then
fails with a message that asks for the credentials to be entered again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialsUnreadable(Exception):
    """The stored ciphertext cannot be decrypted with the current key."""


def _fernet() -> Fernet:
    secret = os.environ.get("SOURCES_ENCRYPTION_KEY") or getattr(settings, "SOURCES_ENCRYPTION_KEY", "") or ""
    material = secret or settings.SECRET_KEY
    # A derived key, so that any string (not only a Fernet key) can be configured.
    key = base64.urlsafe_b64encode(hashlib.sha256(b"sources.credentials:" + material.encode()).digest())
    return Fernet(key)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii") if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialsUnreadable from None


_URL_CREDENTIALS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<cred>[^@/]*@)?", re.IGNORECASE)
_KV_SECRET = re.compile(r"\b(password|passwd|pwd|user|sslkey|sslpassword)\s*=\s*('[^']*'|\S+)", re.IGNORECASE)


def dsn_hint(dsn: str) -> str:
    """What may be shown of a DSN: its scheme, host, port and database, never user or password."""
    dsn = dsn.strip()
    if "://" in dsn:
        hint = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + ("•••@" if m.group("cred") else ""), dsn, count=1)
        return hint.split("?", 1)[0][:300]
    return _KV_SECRET.sub(lambda m: f"{m.group(1)}=•••", dsn)[:300]
