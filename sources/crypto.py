"""Encryption at rest for source credentials (DSNs, auth headers), with keys of their own.

Keys: SOURCE_CREDENTIALS_KEYS, comma-separated Fernet keys (`manage.py rotate_source_credentials
--generate-key` prints one). The first encrypts; every key decrypts (MultiFernet), so rotating is:
put the new key first, keep the old ones after it, run `manage.py rotate_source_credentials`
(re-encrypts every stored value with the first key), then drop the old keys. The keys are not
derived from SECRET_KEY and are not stored in the database or beside its data.

Unset: with DEBUG on (`make run`) a key is generated once into var/source_credentials.key (mode
0600, outside var/pgdata) and every process logs a loud warning; with DEBUG off credentials cannot
be saved (the form says why) and stored ones cannot be read (the sync says why).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)


class CredentialsUnreadable(Exception):
    """The stored ciphertext cannot be decrypted with the configured keys."""


class CredentialsKeyMissing(Exception):
    """No key is configured, so credentials can be neither stored nor read."""

    def __init__(self) -> None:
        super().__init__(
            _("Source credentials cannot be stored or read: the server has no SOURCE_CREDENTIALS_KEYS configured.")
        )


def configured_keys() -> list[str]:
    raw = os.environ.get("SOURCE_CREDENTIALS_KEYS") or ",".join(getattr(settings, "SOURCE_CREDENTIALS_KEYS", []) or [])
    return [key.strip() for key in raw.split(",") if key.strip()]


def development_key_file() -> Path:
    from config.env import VAR_DIR

    return Path(getattr(settings, "SOURCE_CREDENTIALS_KEY_FILE", "") or VAR_DIR / "source_credentials.key")


@lru_cache(maxsize=4)
def _development_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    logger.warning(
        "SOURCE_CREDENTIALS_KEYS is not set: source credentials are encrypted with the development key in %s. "
        "Set SOURCE_CREDENTIALS_KEYS before real credentials go in.",
        path,
    )
    return path.read_text().strip()


def keys() -> list[str]:
    if found := configured_keys():
        return found
    if settings.DEBUG:
        return [_development_key(development_key_file())]
    raise CredentialsKeyMissing


def _multifernet(key_list: list[str] | None = None) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode("ascii")) for key in (key_list or keys())])
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("SOURCE_CREDENTIALS_KEYS must hold Fernet keys (32 url-safe base64 bytes each).") from exc


def encrypt(plain: str) -> str:
    return _multifernet().encrypt(plain.encode("utf-8")).decode("ascii") if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _multifernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialsUnreadable from None


def rotate(token: str) -> str:
    """Re-encrypt with the first key (raises CredentialsUnreadable when no key decrypts it)."""
    if not token:
        return ""
    try:
        return _multifernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise CredentialsUnreadable from None


def legacy_fernet(secret_key: str, sources_encryption_key: str = "") -> Fernet:
    """The key of versions before SOURCE_CREDENTIALS_KEYS (derived from SECRET_KEY), for the
    migration that re-encrypts what they stored."""
    material = sources_encryption_key or secret_key
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"sources.credentials:" + material.encode()).digest()))


_URL_CREDENTIALS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<cred>[^@/]*@)?", re.IGNORECASE)
_KV_SECRET = re.compile(r"\b(password|passwd|pwd|user|sslkey|sslpassword)\s*=\s*('[^']*'|\S+)", re.IGNORECASE)


def dsn_hint(dsn: str) -> str:
    """What may be shown of a DSN: its scheme, host, port and database, never user or password."""
    dsn = dsn.strip()
    if "://" in dsn:
        hint = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + ("•••@" if m.group("cred") else ""), dsn, count=1)
        return hint.split("?", 1)[0][:300]
    return _KV_SECRET.sub(lambda m: f"{m.group(1)}=•••", dsn)[:300]
