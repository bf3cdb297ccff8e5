"""A real Celery worker killed with SIGKILL in the middle of a version: the version is never
stuck and never ends with duplicate chunks; after the reaper it is retried to one set of chunks."""

import datetime as dt
import os
import signal
import time

import pytest
import redis
from django.utils import timezone

from core.services import work_reap
from knowledge.ingestion import services as ingest_services
from knowledge.models import Chunk, ChunkVector, IngestionStatus, VersionIngestion
from tests.core.test_worker_integration import broker, worker_process
from tests.factories import KnowledgeBaseFactory, document, ingest

# Its own Redis database, so that other worker tests flushing theirs cannot take our messages.
REDIS_URL = os.environ.get("TEST_INGEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def wait_for(version, statuses, proc, timeout=180.0, interval=0.05) -> VersionIngestion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = VersionIngestion.objects.filter(version=version).first()
        if row is not None and row.status in statuses:
            return row
        if proc.poll() is not None:
            pytest.fail(f"worker exited early:\n{proc.stdout.read()}")
        time.sleep(interval)
    pytest.fail(f"version still {row and row.status} after {timeout}s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_while_embedding_leaves_the_version_retryable_without_duplicates(credit, people):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit, chunk_settings={"chunk_tokens": 32, "overlap_tokens": 0})
    text = "\n\n".join(
        f"Rule {n} of the lending policy says that branch {n} reviews loans of class {n} every quarter."
        for n in range(900)
    )
    with broker(REDIS_URL, {}):
        with worker_process({"BROKER_URL": REDIS_URL}) as proc:
            doc = document(kb, manager, content=text)  # commits: the services queue the ingestion
            version = doc.latest_version
            row = wait_for(version, {IngestionStatus.EMBEDDING, IngestionStatus.INDEXED, IngestionStatus.FAILED}, proc)
            assert row.status == IngestionStatus.EMBEDDING, "the version finished before the worker could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)

        row.refresh_from_db()
        assert row.status == IngestionStatus.EMBEDDING  # the dead worker could not record anything
        assert not Chunk.objects.filter(version=version).exists()  # and left no partial chunks

        reaped = work_reap(now=timezone.now() + dt.timedelta(hours=1), kinds=["ingestion"])
        assert reaped["ingestion"]["failed"] == 1
        row.refresh_from_db()
        assert row.status == IngestionStatus.FAILED and row.error_code == "worker_lost"

        ingest_services.version_ingest_retry(actor=manager, version=version)  # queues it again on commit
        with worker_process({"BROKER_URL": REDIS_URL}) as proc:
            row = wait_for(version, {IngestionStatus.INDEXED, IngestionStatus.FAILED}, proc)
    assert row.status == IngestionStatus.INDEXED, row.error_message
    assert row.attempts == 2
    indexes = list(Chunk.objects.filter(version=version).values_list("index", flat=True))
    assert len(indexes) == row.chunk_count > 100
    assert sorted(indexes) == list(range(len(indexes)))
    assert ChunkVector.objects.filter(chunk__version=version).count() == len(indexes)
    # the dead worker's unacknowledged message, delivered again later, changes nothing
    assert ingest(version.pk).attempts == 2
    assert Chunk.objects.filter(version=version).count() == len(indexes)
