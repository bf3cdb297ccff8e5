"""Re-encrypt credentials stored by older versions (key derived from SECRET_KEY or
SOURCES_ENCRYPTION_KEY) with SOURCE_CREDENTIALS_KEYS. Values no longer readable with the old key
are left as they are (their sync already asks for them again). With stored credentials and no
key configured, the migration stops and says what to set: nothing is lost."""

from django.conf import settings
from django.db import migrations


def reencrypt(apps, schema_editor):
    from cryptography.fernet import InvalidToken

    from sources import crypto

    Source = apps.get_model("sources", "Source")
    stored = Source.objects.exclude(dsn_encrypted="", auth_header_encrypted="")
    if not stored.exists():
        return
    try:
        new = crypto._multifernet()
    except crypto.CredentialsKeyMissing:
        raise RuntimeError(
            "Stored source credentials must be re-encrypted with keys of their own: set SOURCE_CREDENTIALS_KEYS "
            "(`manage.py rotate_source_credentials --generate-key` prints a key) and run migrate again."
        ) from None
    old = crypto.legacy_fernet(settings.SECRET_KEY, getattr(settings, "SOURCES_ENCRYPTION_KEY", ""))
    for source in stored:
        changed = []
        for field in ("dsn_encrypted", "auth_header_encrypted"):
            token = getattr(source, field)
            if not token:
                continue
            try:
                plain = old.decrypt(token.encode("ascii"))
            except InvalidToken:
                continue
            setattr(source, field, new.encrypt(plain).decode("ascii"))
            changed.append(field)
        if changed:
            source.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [("sources", "0002_allowlist_kind_and_port")]
    operations = [migrations.RunPython(reencrypt, migrations.RunPython.noop)]
