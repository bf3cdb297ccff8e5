"""Retire DRF's plain-text tokens (rest_framework.authtoken): each existing token becomes an API
key holding only the SHA-256 of the old key, so clients keep working with the same header, and the
plain-text table is dropped. On a fresh database there is nothing to do."""

import hashlib

from django.db import migrations


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiKey = apps.get_model("accounts", "ApiKey")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        digest = hashlib.sha256(key.encode()).hexdigest()
        if not ApiKey.objects.filter(digest=digest).exists():
            api_key = ApiKey.objects.create(user_id=user_id, name="token (migrated)", prefix=key[:8], digest=digest)
            ApiKey.objects.filter(pk=api_key.pk).update(created_at=created)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE authtoken_token")
        # The app is no longer installed; forget its migrations so that re-adding it would start clean.
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_api_keys_limits_usage")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
