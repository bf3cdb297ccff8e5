"""The ingestion pipeline against real PostgreSQL and the real packaged embedding model."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django.utils import timezone

from core.services import work_reap
from knowledge.ingestion import services as ingest_services
from knowledge.ingestion import selectors as ingest_selectors
from knowledge.embedding import active_space
from knowledge.models import Chunk, ChunkVector, IngestionStatus, VersionIngestion
from knowledge.services import document_archive, document_submit, document_version_create
from tests.factories import KnowledgeBaseFactory, document
from tests.factories import ingest as run_ingestion

from .ingestion.conftest import make_pdf

POLICY = """# 信贷管理办法

## 贷款审批

贷款须经两级审批。2024年3月1日起，个人贷款利率上调至3.5%。中国工商银行负责复核。

## 附则

本办法自发布之日起施行。
"""


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


def ingest(version):
    row = run_ingestion(version.pk)
    assert row is not None
    return row


def chunks_of(version):
    return list(Chunk.objects.filter(version=version).order_by("index"))


def searchable_versions(doc):
    return set(Chunk.objects.filter(document=doc, searchable=True).values_list("version__number", flat=True))


def new_version(doc, author, content="", original_file=None):
    doc.refresh_from_db()
    return document_version_create(
        actor=author, document=doc, content=content, base_version_number=doc.latest_version.number,
        change_note="update", original_file=original_file,
    )


def test_markdown_version_is_chunked_embedded_and_indexed(kb, people):
    doc = document(kb, people["credit_manager"], content=POLICY)
    row = ingest(doc.latest_version)
    assert row.status == IngestionStatus.INDEXED, row.error_message
    assert row.progress == 1.0
    assert set(row.stage_timings) == {"extract", "chunk", "embed", "index"}
    assert row.attempts == 1 and row.heartbeat_at and row.finished_at
    chunks = chunks_of(doc.latest_version)
    assert len(chunks) == row.chunk_count >= 2
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    approval = next(chunk for chunk in chunks if "两级审批" in chunk.text)
    assert approval.heading_path == ["信贷管理办法", "贷款审批"]
    assert approval.knowledge_base_id == kb.pk and approval.document_id == doc.pk
    kinds = {entity["type"] for entity in approval.entities}
    assert {"date", "percentage", "organization"} <= kinds
    assert all(0 < chunk.token_count <= 256 for chunk in chunks)
    space = active_space()
    vectors = ChunkVector.objects.filter(space=space, chunk__version=doc.latest_version)
    assert vectors.count() == len(chunks)
    assert len(vectors.first().embedding) == space.dimension
    # a draft's chunks are not searchable
    assert not Chunk.objects.filter(document=doc, searchable=True).exists()
    assert ingest_selectors.version_text(doc.latest_version) == POLICY


def test_chunk_size_follows_the_knowledge_base_settings(credit, people):
    kb = KnowledgeBaseFactory(department=credit, chunk_settings={"chunk_tokens": 24, "overlap_tokens": 4})
    text = "\n\n".join(
        f"Paragraph {n} says that loans of type {n} need {n} approvals from the board." for n in range(12)
    )
    doc = document(kb, people["credit_manager"], content=text)
    ingest(doc.latest_version)
    chunks = chunks_of(doc.latest_version)
    assert len(chunks) >= 6
    assert all(chunk.token_count <= 24 for chunk in chunks)


def test_a_second_run_replaces_chunks_without_duplicates(kb, people):
    doc = document(kb, people["credit_manager"], content=POLICY)
    first = ingest(doc.latest_version)
    before = list(Chunk.objects.filter(version=doc.latest_version).values_list("pk", flat=True))
    ingest_services.version_ingest_enqueue(version=doc.latest_version)  # e.g. a redelivered or retried task
    second = ingest(doc.latest_version)
    assert second.status == IngestionStatus.INDEXED and second.attempts == 2
    after = list(Chunk.objects.filter(version=doc.latest_version).values_list("pk", flat=True))
    assert len(after) == len(before) == first.chunk_count
    assert not set(before) & set(after)
    assert ChunkVector.objects.filter(chunk__version=doc.latest_version).count() == len(after)
    # a finished version is not run again by a duplicate message
    assert ingest(doc.latest_version).attempts == 2


def test_searchable_chunks_follow_the_live_version(kb, people):
    manager = people["credit_manager"]
    doc = document(kb, manager, content="Version one talks about mortgages.")
    ingest(doc.latest_version)
    document_submit(actor=manager, document=doc)  # no review needed: published
    assert searchable_versions(doc) == {1}
    assert not ChunkVector.objects.filter(chunk__document=doc, searchable=False).exists()

    v2 = new_version(doc, manager, content="Version two talks about car loans.")
    document_submit(actor=manager, document=doc)
    # v2 is live but not indexed yet: v1 stays searchable
    assert searchable_versions(doc) == {1}
    ingest(v2)
    assert searchable_versions(doc) == {2}
    assert set(ChunkVector.objects.filter(chunk__document=doc, searchable=True).values_list(
        "chunk__version__number", flat=True)) == {2}
    # superseded chunks are kept (old citations still open)
    assert Chunk.objects.filter(document=doc, version__number=1).exists()

    document_archive(reason="superseded", actor=manager, document=doc)
    assert searchable_versions(doc) == set()
    assert not ChunkVector.objects.filter(chunk__document=doc, searchable=True).exists()


def test_a_draft_after_the_live_version_does_not_change_search(kb, people):
    manager = people["credit_manager"]
    doc = document(kb, manager, content="Live text.")
    ingest(doc.latest_version)
    document_submit(actor=manager, document=doc)
    draft = new_version(doc, manager, content="Draft text.")
    ingest(draft)
    assert searchable_versions(doc) == {1}


def test_failed_version_keeps_the_live_version_searchable_and_can_be_retried(kb, people):
    manager = people["credit_manager"]
    doc = document(kb, manager, content="The live policy text about deposits.")
    ingest(doc.latest_version)
    document_submit(actor=manager, document=doc)
    broken = SimpleUploadedFile("policy.pdf", make_pdf()[:400], content_type="application/pdf")
    v2 = new_version(doc, manager, original_file=broken)
    document_submit(actor=manager, document=doc)
    row = ingest(v2)
    assert row.status == IngestionStatus.FAILED
    assert row.error_code == "corrupt_file"
    assert "policy.pdf" in row.error_message and "damaged" in row.error_message
    assert not Chunk.objects.filter(version=v2).exists()
    assert searchable_versions(doc) == {1}

    with pytest.raises(PermissionDenied):
        ingest_services.version_ingest_retry(actor=people["credit_employee"], version=v2)
    retried = ingest_services.version_ingest_retry(actor=manager, version=v2)
    assert retried.status == IngestionStatus.QUEUED and retried.error_message == ""


def test_unexpected_errors_end_as_failed_with_a_message(kb, people):
    doc = document(kb, people["credit_manager"], content="Some text.")
    version = doc.latest_version
    KnowledgeBaseFactory._meta.model.objects.filter(pk=kb.pk).update(chunk_settings={"chunk_tokens": 2})
    row = ingest(version)
    assert row.status == IngestionStatus.FAILED
    assert row.error_code == "internal_error"
    assert "chunk_tokens" in row.error_message
    assert not Chunk.objects.filter(version=version).exists()


def test_reaper_fails_stale_running_versions_so_they_can_be_retried(kb, people):
    doc = document(kb, people["credit_manager"], content="Text.")
    version = doc.latest_version
    old = timezone.now() - dt.timedelta(hours=1)
    VersionIngestion.objects.filter(version=version).update(
        status=IngestionStatus.EMBEDDING, started_at=old, heartbeat_at=old
    )
    fresh_doc = document(kb, people["credit_manager"], content="Other text.")
    VersionIngestion.objects.filter(version=fresh_doc.latest_version).update(
        status=IngestionStatus.EMBEDDING, heartbeat_at=timezone.now()
    )
    assert work_reap(kinds=["ingestion"])["ingestion"]["failed"] == 1
    row = VersionIngestion.objects.get(version=version)
    assert row.status == IngestionStatus.FAILED and row.error_code == "worker_lost"
    assert "retry" in row.error_message
    # a running version with a fresh heartbeat belongs to a live worker: a duplicate message skips it
    assert run_ingestion(fresh_doc.latest_version.pk).status == IngestionStatus.EMBEDDING
    ingest_services.version_ingest_retry(actor=people["credit_manager"], version=version)
    assert ingest(version).status == IngestionStatus.INDEXED


def test_batch_run_encodes_versions_together(kb, people):
    docs = [document(kb, people["credit_manager"], content=f"Passage {n} about savings accounts.") for n in range(3)]
    broken = document(kb, people["credit_manager"], content="   ")
    ids = [doc.latest_version.pk for doc in docs] + [broken.latest_version.pk]
    done = ingest_services.versions_ingest_run(version_ids=ids)
    assert sorted(done) == sorted(ids[:3])
    counts = dict(Chunk.objects.filter(version_id__in=ids).values_list("version_id").annotate(n=Count("pk")))
    assert counts == {pk: 1 for pk in ids[:3]}
    assert VersionIngestion.objects.get(version_id=ids[3]).error_code == "empty"


def test_document_creation_queues_ingestion_in_its_own_transaction(kb, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        doc = document(kb, people["credit_manager"], content="Queued text.")
    # The row exists before commit (same transaction as the version); only the send waits for it.
    row = VersionIngestion.objects.get(version=doc.latest_version)
    assert row.status == IngestionStatus.QUEUED and row.dispatched_at is None
    assert callbacks  # the send, registered for commit


def test_a_worker_takes_other_queued_versions_along(credit, people):
    """One task indexes its version and the other queued ones; their own tasks then do nothing."""
    from knowledge.models import IngestionStatus, VersionIngestion
    from tests.factories import KnowledgeBaseFactory, document

    kb = KnowledgeBaseFactory(department=credit)
    docs = [document(kb, people["credit_manager"], content=f"# Rule {n}\n\nLoans of class {n} need two signatures.")
            for n in range(3)]
    for doc in docs:
        ingest_services.version_ingest_enqueue(version=doc.latest_version)
    done = ingest_services.version_ingest_batch(version_id=docs[0].latest_version.pk)
    assert sorted(done) == sorted(doc.latest_version.pk for doc in docs)
    statuses = set(VersionIngestion.objects.filter(version__document__in=docs).values_list("status", flat=True))
    assert statuses == {IngestionStatus.INDEXED}
    assert ingest_services.version_ingest_batch(version_id=docs[1].latest_version.pk) == []  # already done
