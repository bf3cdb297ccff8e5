"""Versions that were ever published get a row in an append-only table: the read rule opens them to
the document's readers after a newer version goes live.

- The foreign keys cascade in the database, so the retention purge, which deletes versions and
  documents with raw SQL inside its `app.allow_purge` transaction, removes these rows with them.
- Backfill: every current live version, and every version named by a `publish` audit row (the
  audit log is append-only, so it holds every publication since the first one), at the time of
  its first `publish` row (the document's last change when none exists, e.g. data loaded by SQL).

(A migration of its own: Django creates 0007's foreign keys at the end of that migration.)
"""

from django.db import migrations

TABLE = "knowledge_versionpublication"

CASCADE_FOREIGN_KEYS = f"""
DO $$
DECLARE fk record;
BEGIN
    FOR fk IN
        SELECT c.conname, a.attname, c.confrelid::regclass::text AS target
        FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.conrelid = '{TABLE}'::regclass AND c.contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE {TABLE} DROP CONSTRAINT %I', fk.conname);
        EXECUTE format(
            'ALTER TABLE {TABLE} ADD CONSTRAINT %I FOREIGN KEY (%I) REFERENCES %s (id) '
            'ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED',
            fk.conname, fk.attname, fk.target
        );
    END LOOP;
END $$;
"""

APPEND_ONLY = f"""
CREATE TRIGGER {TABLE}_append_only
BEFORE UPDATE OR DELETE ON {TABLE}
FOR EACH ROW EXECUTE FUNCTION forbid_update_delete();
"""

BACKFILL = f"""
INSERT INTO {TABLE} (version_id, document_id, published_at)
SELECT v.id, v.document_id, COALESCE(
    (SELECT min(a.created_at) FROM core_auditentry a WHERE a.action = 'publish' AND a.version_id = v.id),
    d.updated_at)
FROM knowledge_documentversion v JOIN knowledge_document d ON d.id = v.document_id
WHERE d.live_version_id = v.id
   OR EXISTS (SELECT 1 FROM core_auditentry a WHERE a.action = 'publish' AND a.version_id = v.id)
ON CONFLICT (version_id) DO NOTHING;
"""



class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0007_version_publication"),
        ("core", "0003_auditentry_version"),
    ]

    operations = [
        migrations.RunSQL(CASCADE_FOREIGN_KEYS, migrations.RunSQL.noop),
        migrations.RunSQL(APPEND_ONLY, f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};"),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
