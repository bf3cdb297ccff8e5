"""Re-encrypt every stored source credential with the first SOURCE_CREDENTIALS_KEYS key.

Rotation: put a new key first in SOURCE_CREDENTIALS_KEYS (keep the old ones after it), restart,
run this command, then remove the old keys. `--generate-key` prints a new Fernet key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.audit import audit_log
from sources import crypto
from sources.models import Source


class Command(BaseCommand):
    help = "Re-encrypt stored source credentials with the first key of SOURCE_CREDENTIALS_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true", help="Print a new Fernet key and exit.")

    def handle(self, *args, generate_key: bool = False, **options):
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        try:
            crypto.keys()
        except crypto.CredentialsKeyMissing as exc:
            raise CommandError(str(exc)) from None
        rotated, unreadable = 0, []
        with transaction.atomic():
            for source in Source.objects.select_for_update().exclude(dsn_encrypted="", auth_header_encrypted=""):
                try:
                    source.dsn_encrypted = crypto.rotate(source.dsn_encrypted)
                    source.auth_header_encrypted = crypto.rotate(source.auth_header_encrypted)
                except crypto.CredentialsUnreadable:
                    unreadable.append(source.pk)
                    continue
                source.save(update_fields=["dsn_encrypted", "auth_header_encrypted"])
                rotated += 1
            audit_log(actor=None, action="rotate_credentials", rotated=rotated, unreadable=unreadable)
        self.stdout.write(f"Re-encrypted the credentials of {rotated} source(s) with the first key.")
        if unreadable:
            self.stderr.write(
                f"No configured key decrypts the credentials of source(s) {unreadable}: keep their old key in "
                "SOURCE_CREDENTIALS_KEYS and run this again, or enter their credentials again."
            )
