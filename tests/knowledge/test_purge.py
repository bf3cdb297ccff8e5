"""purge_versions after real ingestion, committed: it deletes every dependant of the purged
documents first (postings, vectors, chunks, ingestion rows, source records, hit-test links), so
the commit succeeds, and the rest of the index is untouched."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.audit import AuditAction
from core.models import AuditEntry
from knowledge import services
from knowledge.ingestion import services as ingest_services
from knowledge.models import Chunk, ChunkVector, Document, DocumentVersion, VersionIngestion
from retrieval.indexing import collection_statistics, statistics_rebuild
from retrieval.models import Bm25Posting, HitTestQuery, HitTestSet
from retrieval.search import search
from sources.models import Source, SourceRecord
from tests.core.test_worker_integration import broker
from tests.factories import KnowledgeBaseFactory, published_document


@pytest.mark.django_db(transaction=True)
def test_purge_after_real_ingestion_commits_and_leaves_nothing_pointing_at_the_purged_document(
    credit, people, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    manager, reviewer = people["credit_manager"], people["reviewer"]
    kb = KnowledgeBaseFactory(department=credit)
    with broker("memory://", {}):  # the services' sends go nowhere; this test ingests in-process
        old = published_document(kb, manager, reviewer, content="# Old rule\n\nLoans above one million need two signatures.")
        services.document_version_create(
            actor=manager, document=old, content="# Old rule\n\nLoans above two million need three signatures.",
            base_version_number=1, change_note="raised",
        )
        services.review_approve(actor=reviewer, review=services.document_submit(actor=manager, document=old))
        kept = published_document(kb, manager, reviewer, content="Savings accounts pay interest every month.")
        versions = list(DocumentVersion.objects.filter(document__in=[old, kept]).values_list("pk", flat=True))
        assert sorted(ingest_services.versions_ingest_run(version_ids=versions)) == sorted(versions)
        old_chunks = list(Chunk.objects.filter(document=old).values_list("pk", flat=True))
        assert len(old_chunks) == 2 and Bm25Posting.objects.filter(chunk_id__in=old_chunks).exists()
        source = Source.objects.create(knowledge_base=kb, kind="sql", name="crm", created_by=manager)
        SourceRecord.objects.create(source=source, external_key="42", document=old, content_sha256="0" * 64)
        test_set = HitTestSet.objects.create(knowledge_base=kb, name="smoke", created_by=manager)
        query = HitTestQuery.objects.create(test_set=test_set, query="signatures")
        query.expected_documents.set([old, kept])
        services.document_archive(reason="superseded", actor=manager, document=old)
    Document.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=400))

    call_command("purge_versions", "--older-than-days", "365")  # commits: deferred foreign keys are checked

    assert not Document.objects.filter(pk=old.pk).exists()
    assert not DocumentVersion.objects.filter(document_id=old.pk).exists()
    assert not Chunk.objects.filter(pk__in=old_chunks).exists()
    assert not ChunkVector.objects.filter(chunk_id__in=old_chunks).exists()
    assert not Bm25Posting.objects.filter(chunk_id__in=old_chunks).exists()
    assert not VersionIngestion.objects.filter(version_id__in=versions).exclude(version__document=kept).exists()
    assert not SourceRecord.objects.exists()
    assert list(query.expected_documents.all()) == [kept]
    purge = AuditEntry.objects.get(action=AuditAction.PURGE)
    assert purge.details["chunks_deleted"] == 2 and purge.details["ingestion_rows_deleted"] == 2
    assert purge.details["source_records_deleted"] == [{"source_id": source.pk, "key": "42"}]
    # The kept document is still indexed and found, and the statistics agree with a recount.
    assert Chunk.objects.filter(document=kept, searchable=True).count() == 1
    hits = search(people["credit_employee"], "savings interest", knowledge_bases=[kb], mode="bm25")
    assert [hit.chunk.document_id for hit in hits] == [kept.pk]
    kept_stats = collection_statistics()
    statistics_rebuild()
    assert collection_statistics() == kept_stats
    assert kept_stats[0] == 1
