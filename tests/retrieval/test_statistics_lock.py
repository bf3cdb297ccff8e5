"""Publishing does not wait for ingestion: a reviewer's approve goes through while an ingestion
batch in another connection holds its index transaction open (postings and statistics written,
not committed), and the statistics agree with a recount once both have committed."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

import retrieval.indexing as indexing
from knowledge import services
from knowledge.ingestion import services as ingest_services
from knowledge.models import Chunk, IngestionStatus, VersionIngestion
from retrieval.indexing import collection_statistics, statistics_rebuild
from tests.conftest import login
from tests.core.test_worker_integration import broker
from tests.factories import KnowledgeBaseFactory, document, published_document


@pytest.mark.django_db(transaction=True)
def test_approve_does_not_wait_for_an_ingestion_batch_holding_its_index_transaction(credit, people, monkeypatch):
    manager, reviewer = people["credit_manager"], people["reviewer"]
    kb = KnowledgeBaseFactory(department=credit)
    with broker("memory://", {}):  # the services' sends go nowhere; ingestion runs in-process
        reviewed = published_document(kb, manager, reviewer, content="Loans above one million need two signatures.")
        v2 = services.document_version_create(
            actor=manager, document=reviewed, content="Loans above two million need three signatures.",
            base_version_number=1, change_note="raised",
        )
        review = services.document_submit(actor=manager, document=reviewed)
        ingest_services.versions_ingest_run(version_ids=[reviewed.live_version_id, v2.pk])
        open_kb = KnowledgeBaseFactory(department=credit, review_required=False)
        batch = [document(open_kb, manager, content=f"Savings plan {n} pays interest monthly.") for n in range(3)]
        for doc in batch:
            services.document_submit(actor=manager, document=doc)  # published at once, indexed by the batch

    holding, release, failures = threading.Event(), threading.Event(), []
    original = indexing.index_chunks

    def index_then_hold(**kwargs):
        original(**kwargs)
        if threading.current_thread() is worker:
            holding.set()  # postings and statistics written; the batch's transaction stays open
            release.wait(60)

    def ingest_batch():
        try:
            ingest_services.versions_ingest_run(version_ids=[doc.latest_version_id for doc in batch])
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            holding.set()
            connection.close()

    monkeypatch.setattr(indexing, "index_chunks", index_then_hold)
    worker = threading.Thread(target=ingest_batch)
    worker.start()
    try:
        assert holding.wait(120)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a wait on the batch's locks fails instead of hanging
        response = login(reviewer).post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "ok"})
        assert response.status_code == 302
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        worker.join(120)
    assert not failures
    reviewed.refresh_from_db()
    assert reviewed.live_version_id == v2.pk
    assert set(Chunk.objects.filter(document=reviewed, searchable=True).values_list("version_id", flat=True)) == {v2.pk}
    statuses = VersionIngestion.objects.filter(version__document__in=batch).values_list("status", flat=True)
    assert set(statuses) == {IngestionStatus.INDEXED}
    # Both committed: base rows + deltas equal a recount from the postings.
    summed = collection_statistics()
    assert summed[0] == Chunk.objects.filter(searchable=True).count() == 4
    statistics_rebuild()
    assert collection_statistics() == summed
