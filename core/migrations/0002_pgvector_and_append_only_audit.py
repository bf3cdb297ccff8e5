from django.db import migrations
from pgvector.django import VectorExtension

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION forbid_update_delete() RETURNS trigger AS $$
BEGIN
    -- A retention purge sets this for its own transaction only (and audits itself).
    IF current_setting('app.allow_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

AUDIT_TRIGGER = """
CREATE TRIGGER core_auditentry_append_only
BEFORE UPDATE OR DELETE ON core_auditentry
FOR EACH ROW EXECUTE FUNCTION forbid_update_delete();
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [
        VectorExtension(),
        migrations.RunSQL(APPEND_ONLY_FUNCTION, "DROP FUNCTION IF EXISTS forbid_update_delete() CASCADE;"),
        migrations.RunSQL(AUDIT_TRIGGER, "DROP TRIGGER IF EXISTS core_auditentry_append_only ON core_auditentry;"),
    ]
