"""The read rule's parts that the permission matrix does not show: serializers and templates fail
closed without the acting user, the durable "was published" record (append-only, backfilled by its
migration, removed with its version by the purge), and lock breaking asked of the policy."""

import importlib
from datetime import timedelta

import pytest
from django.test import Client
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Role
from knowledge import services
from knowledge.models import Document, DocumentVersion, VersionPublication, sha256_text
from knowledge.policy import document_policy, version_policy
from knowledge.serializers import DocumentSerializer
from tests.factories import KnowledgeBaseFactory, member, published_document

backfill_migration = importlib.import_module("knowledge.migrations.0008_version_publication_backfill")


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, name="Credit rules")


@pytest.fixture
def with_draft(kb, people):
    """v1 live, v2 a draft on top of it."""
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"], content="Rate 3%")
    services.document_version_create(
        actor=people["credit_manager"], document=doc, content="Rate 9% secret", base_version_number=1,
        change_note="raise",
    )
    return Document.objects.select_related("knowledge_base", "latest_version", "live_version").get(pk=doc.pk)


def test_the_document_serializer_without_a_request_shows_no_draft(with_draft):
    data = DocumentSerializer(with_draft).data
    assert data["state"] == "published"
    assert data["latest_version"]["number"] == 1
    assert data["live_version"]["number"] == 1


def test_document_templates_without_a_request_show_no_draft(with_draft):
    table = render_to_string("knowledge/_document_table.html", {"page": [with_draft]})
    assert "Published" in table and "v1" in table
    assert "Draft" not in table and "v2" not in table
    nav = render_to_string(
        "knowledge/_doc_nav.html", {"document": with_draft, "knowledge_base": with_draft.knowledge_base}
    )
    assert "Published" in nav and "Draft" not in nav


def test_publishing_records_the_version_once(with_draft, people):
    v1 = with_draft.live_version
    assert VersionPublication.objects.get(version=v1).document == with_draft
    review = services.document_submit(actor=people["credit_manager"], document=with_draft)
    services.review_approve(actor=people["credit_reviewer"], review=review)
    assert sorted(VersionPublication.objects.values_list("version__number", flat=True)) == [1, 2]


def test_publication_rows_are_append_only(with_draft):
    row = VersionPublication.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        VersionPublication.objects.filter(pk=row.pk).update(published_at=timezone.now())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        VersionPublication.objects.filter(pk=row.pk)._raw_delete(connection.alias)


def test_the_migration_backfills_from_live_versions_and_publish_audit_rows(kb, people):
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    revised = published_document(kb, manager, reviewer, content="v1")
    services.document_version_create(
        actor=manager, document=revised, content="v2", base_version_number=1, change_note="v2"
    )
    services.review_approve(actor=reviewer, review=services.document_submit(actor=manager, document=revised))
    services.document_version_create(
        actor=manager, document=revised, content="v3", base_version_number=2, change_note="v3"
    )
    # A document made live by SQL, without any publish audit row (old data, bulk loads).
    loaded = Document.objects.create(knowledge_base=kb, title="Loaded", owner=manager, state="published")
    loaded_v1 = DocumentVersion.objects.create(
        document=loaded, number=1, content="x", author=manager, content_sha256=sha256_text("x")
    )
    Document.objects.filter(pk=loaded.pk).update(latest_version=loaded_v1, live_version=loaded_v1)
    with connection.cursor() as cursor:  # back to the state before the migration
        cursor.execute("SET LOCAL app.allow_purge = 'on'")
        cursor.execute("DELETE FROM knowledge_versionpublication")
        cursor.execute("SET LOCAL app.allow_purge = 'off'")
        cursor.execute(backfill_migration.BACKFILL)

    published = {(p.document.title, p.version.number) for p in VersionPublication.objects.select_related(
        "document", "version")}
    assert published == {(revised.title, 1), (revised.title, 2), ("Loaded", 1)}
    first_publish = revised.versions.get(number=1).audit_entries.get(action="publish").created_at
    assert VersionPublication.objects.get(version__document=revised, version__number=1).published_at == first_publish


def test_the_purge_takes_publication_rows_with_their_versions(kb, people):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"], content="old")
    services.document_archive(reason="superseded", actor=people["credit_manager"], document=doc)
    Document.objects.filter(pk=doc.pk).update(updated_at=timezone.now() - timedelta(days=400))
    call_command("purge_versions", "--older-than-days", "365")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what the commit would check
    assert not VersionPublication.objects.exists()
    assert not Document.objects.filter(pk=doc.pk).exists()


@pytest.fixture
def sent_back_middle(kb, people):
    """v1 published, v2 sent back by the reviewer, v3 (built on v2) published."""
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    doc = published_document(kb, manager, reviewer, content="v1")
    services.document_version_create(actor=manager, document=doc, content="v2", base_version_number=1, change_note="2")
    services.review_request_changes(
        actor=reviewer, review=services.document_submit(actor=manager, document=doc), comment="no"
    )
    services.document_version_create(actor=manager, document=doc, content="v3", base_version_number=2, change_note="3")
    services.review_approve(actor=reviewer, review=services.document_submit(actor=manager, document=doc))
    return doc


def test_readers_open_an_old_published_version_but_not_a_sent_back_one(sent_back_middle, credit):
    doc = sent_back_middle
    reader = member(credit, Role.EMPLOYEE, "reader")
    readable = version_policy.instances_user_has_permission_for(reader, "view").filter(document=doc)
    assert sorted(readable.values_list("number", flat=True)) == [1, 3]
    page = Client()
    page.force_login(reader)
    assert page.get(f"/knowledge/documents/{doc.pk}/versions/1/").status_code == 200
    assert page.get(f"/knowledge/documents/{doc.pk}/versions/2/").status_code == 404
    history = page.get(f"/knowledge/documents/{doc.pk}/history/").content.decode()
    assert 'data-version="3"' in history and 'data-version="1"' in history and 'data-version="2"' not in history


def test_breaking_a_lock_is_asked_of_the_policy(kb, people, credit, hr):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    may_break = {
        name: document_policy.user_has_permission_for_instance(people[name], "break_lock", doc)
        for name in ("credit_admin", "credit_manager", "credit_employee", "superuser", "hr_manager")
    }
    assert may_break == {
        "credit_admin": True, "credit_manager": False, "credit_employee": False, "superuser": True,
        "hr_manager": False,
    }
    services.edit_lock_acquire(actor=people["credit_manager"], document=doc)
    with pytest.raises(Exception) as refused:
        services.edit_lock_break(actor=people["credit_employee"], document=doc)
    assert type(refused.value).__name__ == "PermissionDenied"
    services.edit_lock_break(actor=people["credit_admin"], document=doc)
    assert not hasattr(Document.objects.get(pk=doc.pk), "edit_lock")


def test_filtering_or_sorting_by_state_tells_a_reader_nothing_about_drafts(with_draft, kb, people, credit):
    other = published_document(kb, people["credit_manager"], people["credit_reviewer"], content="other")
    reader = Client()
    reader.force_login(member(credit, Role.EMPLOYEE, "reader"))
    assert reader.get("/api/documents/", {"state": "draft"}).json()["results"] == []
    assert {d["title"] for d in reader.get("/api/documents/", {"state": "published"}).json()["results"]} == {
        with_draft.title, other.title
    }
    page = reader.get(f"/knowledge/bases/{kb.pk}/", {"state": "draft"}).content.decode()
    assert f'data-document="{with_draft.pk}"' not in page
    # sorted by state, readers get the same order as by date (all "published")
    by_state = [d["id"] for d in reader.get("/api/documents/", {"ordering": "state"}).json()["results"]]
    by_date = [d["id"] for d in reader.get("/api/documents/", {"ordering": "-updated_at"}).json()["results"]]
    assert by_state == by_date
    editor = Client()
    editor.force_login(people["credit_manager"])
    assert [d["title"] for d in editor.get("/api/documents/", {"state": "draft"}).json()["results"]] == [
        with_draft.title
    ]


def test_the_document_list_asks_the_policy_without_a_query_per_row(kb, people):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    manager = people["credit_manager"]
    client = Client()
    client.force_login(manager)
    services.edit_lock_acquire(actor=manager, document=published_document(kb, manager, people["credit_reviewer"]))

    def queries():
        with CaptureQueriesContext(db) as captured:
            assert client.get(f"/knowledge/bases/{kb.pk}/").status_code == 200
        return len(captured)

    queries()  # the first request also fills per-process caches (content types, session)
    few = queries()
    for _ in range(5):
        services.edit_lock_acquire(actor=manager, document=published_document(kb, manager, people["credit_reviewer"]))
    assert queries() == few


def test_a_reader_never_learns_the_id_of_a_sent_back_parent_version(sent_back_middle, people, credit):
    doc, manager = sent_back_middle, people["credit_manager"]
    hidden = doc.versions.get(number=2).pk
    reader = Client()
    reader.force_login(member(credit, Role.EMPLOYEE, "reader"))
    for url in (f"/api/documents/{doc.pk}/versions/", f"/api/versions/?document={doc.pk}",
                f"/api/versions/{doc.versions.get(number=3).pk}/"):
        response = reader.get(url)
        assert response.status_code == 200
        rows = response.json()
        rows = rows.get("results", [rows]) if isinstance(rows, dict) else rows
        assert rows and all(row["parent"] is None for row in rows), url
    editor = Client()
    editor.force_login(manager)
    rows = editor.get(f"/api/documents/{doc.pk}/versions/").json()["results"]
    assert {row["number"]: row["parent"] for row in rows}[3] == hidden
