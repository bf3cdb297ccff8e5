from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from core.audit import AuditAction
from core.models import AuditEntry
from knowledge import services
from knowledge.models import AppendOnlyError, Document, DocumentVersion, Review
from tests.factories import KnowledgeBaseFactory, document


@pytest.fixture
def doc(credit, people):
    kb = KnowledgeBaseFactory(department=credit)
    return document(kb, people["credit_manager"], content="原文 original")


def raw(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def test_raw_sql_update_of_a_version_fails(doc):
    version_id = doc.latest_version_id
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("UPDATE knowledge_documentversion SET content = 'tampered' WHERE id = %s", [version_id])
    assert raw("SELECT 1 FROM knowledge_documentversion WHERE id = %s", [version_id]) == 1
    assert DocumentVersion.objects.get(pk=version_id).content == "原文 original"


def test_raw_sql_delete_of_a_version_fails(doc):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM knowledge_documentversion WHERE document_id = %s", [doc.pk])
    assert DocumentVersion.objects.filter(document=doc).count() == 1


def test_orm_writes_on_an_existing_version_fail(doc):
    version = doc.latest_version
    version.content = "tampered"
    with pytest.raises(AppendOnlyError):
        version.save()
    with pytest.raises(AppendOnlyError):
        version.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        DocumentVersion.objects.filter(pk=version.pk).update(change_note="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        DocumentVersion.objects.filter(pk=version.pk)._raw_delete(connection.alias)
    assert DocumentVersion.objects.get(pk=version.pk).content == "原文 original"


def test_audit_rows_are_append_only_too(doc):
    entry = AuditEntry.objects.filter(version=doc.latest_version).first()
    with pytest.raises(DatabaseError), transaction.atomic():
        raw("UPDATE core_auditentry SET action = 'x' WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        raw("DELETE FROM core_auditentry WHERE id = %s", [entry.pk])


def test_version_numbers_are_unique_per_document(doc, people):
    with pytest.raises(IntegrityError), transaction.atomic():
        DocumentVersion.objects.create(document=doc, number=1, content="dup", author=people["credit_manager"])


def test_the_database_allows_one_open_review_per_document(doc, people):
    services.document_submit(actor=people["credit_manager"], document=doc)
    with pytest.raises(IntegrityError), transaction.atomic():
        raw(
            "INSERT INTO knowledge_review (document_id, version_id, state, requested_by_id, comment, created_at)"
            " VALUES (%s, %s, 'open', %s, '', now())",
            [doc.pk, doc.latest_version_id, people["credit_manager"].pk],
        )
    # Closed reviews do not count: a decided one may sit next to the open one.
    raw(
        "INSERT INTO knowledge_review (document_id, version_id, state, requested_by_id, comment, created_at)"
        " VALUES (%s, %s, 'cancelled', %s, '', now())",
        [doc.pk, doc.latest_version_id, people["credit_manager"].pk],
    )
    assert Review.objects.filter(document=doc).count() == 2


def test_purge_command_is_the_one_exception_and_audits_itself(
    credit, people, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit)
    old = services.document_create(
        actor=manager, knowledge_base=kb, title="Old policy", content="v1",
        original_file=ContentFile(b"# old", name="old.md"),
    )
    services.document_version_create(actor=manager, document=old, content="v2", base_version_number=1)
    services.document_submit(actor=manager, document=old)
    services.document_archive(reason="superseded", actor=manager, document=old)
    kept = document(kb, manager, content="keep me")
    archived_recently = document(kb, manager, content="archived today")
    services.document_archive(reason="superseded", actor=manager, document=archived_recently)
    Document.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=400))
    stored_file = tmp_path / DocumentVersion.objects.get(document=old, number=1).original_file.name
    assert stored_file.exists()

    with django_capture_on_commit_callbacks(execute=True):  # the files go once the purge commits
        call_command("purge_versions", "--older-than-days", "365", "--actor", "root")

    assert not Document.objects.filter(pk=old.pk).exists()
    assert not DocumentVersion.objects.filter(document_id=old.pk).exists()
    assert DocumentVersion.objects.filter(document__in=[kept, archived_recently]).count() == 2
    assert not stored_file.exists()
    purge = AuditEntry.objects.get(action=AuditAction.PURGE)
    assert purge.actor_username == "root" and purge.department == credit
    assert purge.details["document_id"] == old.pk
    assert [v["number"] for v in purge.details["versions"]] == [1, 2]
    # The exception was local to the command's transaction: the trigger refuses again.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM knowledge_documentversion WHERE document_id = %s", [kept.pk])


def test_purge_dry_run_changes_nothing(doc, people):
    services.document_archive(reason="superseded", actor=people["credit_manager"], document=doc)
    call_command("purge_versions", "--older-than-days", "0", "--dry-run")
    assert DocumentVersion.objects.filter(document=doc).count() == 1
    assert not AuditEntry.objects.filter(action=AuditAction.PURGE).exists()
