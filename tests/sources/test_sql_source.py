"""The SQL source against the real PostgreSQL server: a schema of rows in the test database."""

import pytest
from django.db import connection

from knowledge.models import Document, DocumentVersion
from sources.models import Source, SourceKind, SourceRecord, SyncStatus
from sources.services import source_create, source_sync, source_update
from tests.sources.conftest import faq_source


def sql_source(kb, manager, rows, **overrides):
    fields = {
        "name": "Policies table",
        "dsn": rows.source_dsn,
        "query": f"SELECT id, title, body, amount FROM {rows.table} ORDER BY id",
        "key_field": "id",
        "title_template": "{title}",
        "body_template": "# {title}\n\n{body}\n\nAmount: {amount}",
    }
    fields.update(overrides)
    return source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, **fields)


def test_rows_become_documents_and_an_unchanged_resync_creates_nothing(kb, manager, rows):
    source = sql_source(kb, manager, rows)
    first = source_sync(source_id=source.pk)
    assert (first.status, first.created, first.updated, first.unchanged, first.failed) == (SyncStatus.SUCCEEDED, 3, 0, 0, 0)
    documents = Document.objects.filter(knowledge_base=kb).order_by("title")
    assert [d.title for d in documents] == ["Card policy", "Fees", "Loan policy"]
    loan = documents.get(title="Loan policy")
    assert loan.latest_version.content == "# Loan policy\n\nLoans need **two** signatures.\n\nAmount: 100.50"
    assert loan.owner == manager and loan.latest_version.author == manager
    versions_before = DocumentVersion.objects.count()

    second = source_sync(source_id=source.pk)
    assert (second.status, second.created, second.updated, second.unchanged) == (SyncStatus.SUCCEEDED, 0, 0, 3)
    assert DocumentVersion.objects.count() == versions_before

    rows.execute(f"UPDATE {rows.table} SET body = 'Cards expire after 5 years.' WHERE id = 2")
    third = source_sync(source_id=source.pk)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    assert DocumentVersion.objects.count() == versions_before + 1
    card = Document.objects.get(title="Card policy")
    assert card.latest_version.number == 2
    assert "5 years" in card.latest_version.content
    assert card.latest_version.change_note == "Synced from source “Policies table”"
    source.refresh_from_db()
    assert source.last_sync_id == third.pk


def test_django_template_syntax_and_a_failing_row_does_not_lose_the_others(kb, manager, rows):
    rows.execute(f"UPDATE {rows.table} SET title = '' WHERE id = 3")
    source = sql_source(
        kb, manager, rows,
        title_template="{{ title }}",
        body_template="{% if amount != '0' %}Amount {{ amount }}{% endif %} {{ body|upper }}",
    )
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.created, sync.failed) == (SyncStatus.PARTIAL, 2, 1)
    assert sync.record_errors == [{"key": "3", "error": "The title template rendered an empty title."}]
    assert Document.objects.get(title="Loan policy").latest_version.content == (
        "Amount 100.50 LOANS NEED **TWO** SIGNATURES."
    )
    assert SourceRecord.objects.filter(source=source).count() == 2


def test_the_connection_is_read_only(kb, manager, rows):
    # A write inside a WITH starts like a read: the server's read-only transaction stops it.
    query = f"WITH planted AS (INSERT INTO {rows.table} VALUES (99, 'x', 'y', 1) RETURNING *) SELECT * FROM planted"
    source = sql_source(kb, manager, rows, query=query)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert "read-only" in sync.error
    assert rows.count() == 3
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_the_query_has_a_time_limit(kb, manager, rows):
    source = sql_source(kb, manager, rows, query="SELECT 1 AS id, 't' AS title, 'b' AS body, 0 AS amount, pg_sleep(5)",
                        timeout_seconds=1)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error == "The query ran longer than the time limit (1 s)."
    assert sync.duration.total_seconds() < 4


def test_the_row_limit_fails_the_sync_without_writing(kb, manager, rows):
    source = sql_source(kb, manager, rows, max_records=2)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert "more than 2 rows" in sync.error
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_a_bad_query_fails_with_the_database_message(kb, manager, rows):
    source = sql_source(kb, manager, rows, query="SELECT * FROM no_such_table")
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error.startswith("Database error:") and "no_such_table" in sync.error


def test_the_dsn_is_encrypted_at_rest_and_never_shown(kb, manager, rows):
    secret_dsn = rows.source_dsn
    source = sql_source(kb, manager, rows, dsn=secret_dsn)
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(s)::text FROM sources_source s WHERE id = %s", [source.pk])
        stored = cursor.fetchone()[0]
    assert "Sup3rSecret" not in stored and "source_reader" not in stored
    assert Source.objects.get(pk=source.pk).dsn == secret_dsn
    assert source.dsn_hint == f"postgresql://•••@127.0.0.1:{rows.server.port}/warehouse"
    # Saving the form without a new DSN keeps the stored one.
    source_update(actor=manager, source=source, name="Renamed", dsn="")
    assert Source.objects.get(pk=source.pk).dsn == secret_dsn


def test_sync_runs_as_the_creator_and_fails_when_they_lost_the_right(kb, manager, rows):
    from accounts.models import Membership, Role

    source = sql_source(kb, manager, rows)
    Membership.objects.filter(user=manager).update(role=Role.EMPLOYEE)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert "no longer manages" in sync.error


def test_sqlite_source(kb, manager, tmp_path, settings):
    import sqlite3

    settings.SOURCES_SQLITE_DIR = str(tmp_path)
    path = tmp_path / "faq.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE faq (code TEXT, q TEXT, a TEXT)")
        db.execute("INSERT INTO faq VALUES ('A1', 'How?', 'Like this.')")
    source = source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="FAQ", dsn=f"sqlite:///{path}",
        query="SELECT * FROM faq", key_field="code", title_template="{q}", body_template="{a}",
    )
    assert source_sync(source_id=source.pk).created == 1
    writer = source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="FAQ writer", dsn=f"sqlite:///{path}",
        query="WITH b AS (SELECT 'B') INSERT INTO faq VALUES ('B', 'x', 'y') RETURNING code", key_field="code",
        title_template="{q}", body_template="{a}",
    )
    sync = source_sync(source_id=writer.pk)
    assert sync.status == SyncStatus.FAILED
    assert "readonly" in sync.error.replace("-", "").replace(" ", "").lower()


@pytest.mark.parametrize("query, word", [
    ("DO $$BEGIN PERFORM pg_sleep(3); END$$", "do"),
    ("SET statement_timeout = 0", "set"),
    ("LISTEN planted", "listen"),
    ("/* SELECT */ DO $$BEGIN PERFORM pg_sleep(3); END$$", "do"),
    ("/* nested /* */ SELECT 1 */ DO $$BEGIN PERFORM pg_sleep(3); END$$", "do"),  # PostgreSQL nests comments
    ("-- SELECT\nCALL planted()", "call"),
])
def test_a_query_that_is_not_a_read_is_refused_at_save_and_never_sent(kb, manager, rows, query, word):
    from django.core.exceptions import ValidationError

    message = f"A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “{word}”."
    with pytest.raises(ValidationError) as refused:
        sql_source(kb, manager, rows, query=query)
    assert refused.value.message_dict == {"query": [message]}
    # One saved before this check existed fails its sync at once, before it reaches the server.
    source = sql_source(kb, manager, rows)
    Source.objects.filter(pk=source.pk).update(query=query)
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, message)
    assert sync.duration.total_seconds() < 2
    assert not Document.objects.filter(knowledge_base=kb).exists()


ROWS = {"key_field": "id", "title_template": "{title}", "body_template": "{body}"}
VALUES = {"key_field": "column1", "title_template": "{column2}", "body_template": "{column3}"}


@pytest.mark.parametrize("query, fields, created", [
    ("SELECT id, title, body, amount FROM {table}", ROWS, 3),
    ("  (\n -- the policies\n /* all of them */ SELECT id, title, body, amount FROM {table})", ROWS, 3),
    ("WITH p AS (SELECT * FROM {table}) SELECT id, title, body, amount FROM p", ROWS, 3),
    ("TABLE {table}", ROWS, 3),
    ("values (1, 'Fees', 'None.')", VALUES, 1),
])
def test_reads_in_every_form_are_accepted(kb, manager, rows, query, fields, created):
    sync = source_sync(source_id=sql_source(kb, manager, rows, query=query.format(table=rows.table), **fields).pk)
    assert (sync.status, sync.created) == (SyncStatus.SUCCEEDED, created), sync.error


@pytest.mark.parametrize("template", ["{{ x|no_such_filter }}", "{% if %}", "{% load static %}{% static 'a' %}", "{% include '/etc/passwd' %}"])
def test_unsafe_or_broken_templates_are_refused(kb, manager, rows, template):
    from django.core.exceptions import ValidationError

    # {% include %} would find no loader anyway (nothing is read from disk): it is refused at save.
    with pytest.raises(ValidationError):
        sql_source(kb, manager, rows, body_template=template)


@pytest.mark.parametrize("dialect, query, word", [
    ("sqlite", "ATTACH DATABASE '/tmp/planted.db' AS planted", "attach"),
    ("sqlite", "PRAGMA query_only = OFF", "pragma"),
    ("sqlite", "/* never closed SELECT 1", None),
    ("postgresql", "/* /* */ SELECT 1", None),  # still inside the outer comment
    ("mysql", "/* /* */ SELECT 1", "select"),  # MySQL does not nest
    ("mysql", "/*M!100000 DO 1 */ SELECT 1", "/*!"),
    ("postgresql", "-- only a comment", None),
    ("postgresql", "SELECTED", "selected"),
])
def test_the_statement_check_reads_comments_as_each_dialect_does(dialect, query, word):
    from sources.fetch_sql import read_statement_error

    if word is None:
        assert read_statement_error(query, dialect) == "The query has no statement, only comments."
    elif word == "select":
        assert read_statement_error(query, dialect) is None
    else:
        assert read_statement_error(query, dialect) == (
            f"A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “{word}”."
        )


def test_a_source_whose_creator_left_is_taken_over_by_another_manager(kb, manager, people, credit, faq_db):
    """The creator is deactivated (offboarding): syncs fail and the page says why; another manager of
    the knowledge base runs them as themselves and they work again. Audited; other departments'
    managers cannot."""
    from rest_framework.test import APIClient

    from accounts.models import Role
    from accounts.services import user_set_active
    from core.models import AuditEntry
    from tests.conftest import login
    from tests.factories import member

    faq_db(("A1", "How?", "Like this."))
    source = faq_source(manager, kb, faq_db.dsn)
    user_set_active(actor=people["superuser"], user=manager, active=False)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED and "no longer manages" in sync.error
    successor = member(credit, Role.KNOWLEDGE_MANAGER, "credit_manager_2")
    client = login(successor)
    page = client.get(f"/sources/{source.pk}/").content.decode()
    assert 'data-testid="runner-cannot-sync"' in page and 'data-action="run-as-me"' in page
    # another department's manager sees no such source
    assert login(people["hr_manager"]).post(f"/sources/{source.pk}/run-as-me/").status_code == 404
    response = client.post(f"/sources/{source.pk}/run-as-me/", follow=True)
    assert "now run as you" in response.content.decode()
    assert 'data-testid="runner-cannot-sync"' not in response.content.decode()
    assert Source.objects.get(pk=source.pk).created_by_id == successor.pk
    assert source_sync(source_id=source.pk).created == 1
    entry = AuditEntry.objects.filter(details__changed=["runs_as"]).get()
    assert entry.details["previous_runner"] == "credit_manager" and entry.details["runner"] == "credit_manager_2"
    # through the API too (idempotent for the runner)
    api = APIClient()
    api.force_authenticate(successor)
    response = api.post(f"/api/sources/{source.pk}/run-as-me/")
    assert response.status_code == 200 and response.json()["created_by"] == "credit_manager_2"
    for bad in ("999999", "²", "abc"):
        assert api.post(f"/api/sources/{bad}/run-as-me/").status_code == 404, bad
    response = api.post(f"/api/sources/{source.pk}/run-as-me/", {"created_by": {"x": ["y" * 100000]}}, format="json")
    assert response.status_code == 400  # the action takes no body
    hr = APIClient()
    hr.force_authenticate(people["hr_manager"])
    assert hr.post(f"/api/sources/{source.pk}/run-as-me/").status_code == 404
    assert AuditEntry.objects.filter(details__changed=["runs_as"]).count() == 1
