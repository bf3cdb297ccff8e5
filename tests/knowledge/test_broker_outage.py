"""Nothing is lost between commit and queue: with the broker down, saving and publishing answer
as usual; once it is back, core's reaper sends the ingestion that was never sent, and a real
worker ingests the version exactly once."""

import datetime as dt
import os
import time

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from core.services import work_reap
from knowledge.models import Chunk, Document, DocumentState, IngestionStatus, VersionIngestion
from retrieval.search import search
from tests.conftest import login
from tests.core.test_worker_integration import broker, worker_process
from tests.factories import KnowledgeBaseFactory

REDIS_URL = os.environ.get("TEST_INGEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Nothing listens on port 1: every connection is refused, as when the broker is down.
BROKER_DOWN = "redis://127.0.0.1:1/0"


def wait_indexed(version, proc, timeout=180.0) -> VersionIngestion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = VersionIngestion.objects.get(version=version)
        if row.status in (IngestionStatus.INDEXED, IngestionStatus.FAILED):
            return row
        if proc.poll() is not None:
            pytest.fail(f"worker exited early:\n{proc.stdout.read()}")
        time.sleep(0.2)
    pytest.fail(f"version still {row.status} after {timeout}s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_saving_and_publishing_work_and_the_version_is_ingested_once(credit, people):
    queue = redis.Redis.from_url(REDIS_URL)
    queue.ping()
    queue.flushdb()
    kb = KnowledgeBaseFactory(department=credit, review_required=True)
    manager, reviewer = login(people["credit_manager"]), login(people["reviewer"])
    with broker(BROKER_DOWN, {}):
        response = manager.post(
            reverse("knowledge:document_create", args=[kb.pk]),
            {"title": "Branch hours", "content": "Branches open at nine and close at five on weekdays."},
        )
        assert response.status_code == 302, response.content.decode()[:500]
        document = Document.objects.get(title="Branch hours")
        assert manager.post(reverse("knowledge:document_submit", args=[document.pk])).status_code == 302
        review = document.reviews.get()
        response = reviewer.post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "fine"})
        assert response.status_code == 302
        assert reviewer.get(response.url).status_code == 200
    document.refresh_from_db()
    assert document.state == DocumentState.PUBLISHED and document.live_version_id == document.latest_version_id
    version = document.latest_version
    row = VersionIngestion.objects.get(version=version)  # created with the version, in its transaction
    assert row.status == IngestionStatus.QUEUED and row.dispatched_at is None and row.attempts == 0
    assert queue.llen("ingest") == 0  # nothing reached a broker

    with broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL}) as proc:
        later = timezone.now() + dt.timedelta(minutes=1)
        assert work_reap(now=later, kinds=["ingestion"])["ingestion"] == {"failed": 0, "dispatched": 1}
        # Sent once: the next reaper run does not send it again.
        assert work_reap(now=later, kinds=["ingestion"])["ingestion"] == {"failed": 0, "dispatched": 0}
        row = wait_indexed(version, proc)
        time.sleep(1.0)  # a duplicate message, had there been one, would run now
    row.refresh_from_db()
    assert row.status == IngestionStatus.INDEXED, row.error_message
    assert row.attempts == 1  # ingested exactly once
    assert row.dispatched_at is not None
    assert queue.llen("ingest") == 0
    chunks = Chunk.objects.filter(version=version)
    assert chunks.count() == row.chunk_count >= 1
    assert all(chunk.searchable for chunk in chunks)  # the published version became searchable
    hits = search(people["credit_employee"], "when do branches open", knowledge_bases=[kb], mode="bm25")
    assert hits and hits[0].chunk.document_id == document.pk
