from django.db import migrations

# forbid_update_delete() comes from core 0002: it raises unless the transaction has set
# app.allow_purge = 'on' (only the purge_versions command does, and it audits itself).
VERSION_TRIGGER = """
CREATE TRIGGER knowledge_documentversion_append_only
BEFORE UPDATE OR DELETE ON knowledge_documentversion
FOR EACH ROW EXECUTE FUNCTION forbid_update_delete();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0001_initial"),
        ("core", "0002_pgvector_and_append_only_audit"),
    ]

    operations = [
        migrations.RunSQL(
            VERSION_TRIGGER,
            "DROP TRIGGER IF EXISTS knowledge_documentversion_append_only ON knowledge_documentversion;",
        ),
    ]
