"""Thin Celery tasks for ingestion: take ids, call the pipeline. The VersionIngestion row is the
truth; a worker killed mid-version leaves a stale heartbeat that `ingestion_reap_stale` fails."""

from celery import shared_task

from . import pipeline

# Hard limit a little above the soft one: the soft one lets the run record "failed" itself.
SOFT_TIME_LIMIT = 30 * 60
TIME_LIMIT = SOFT_TIME_LIMIT + 60


@shared_task(
    name="knowledge.version_ingest",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
)
def version_ingest(version_id: int) -> None:
    pipeline.version_ingest_batch(version_id=version_id)


@shared_task(name="knowledge.ingestion_reap_stale", ignore_result=True)
def ingestion_reap_stale() -> int:
    return pipeline.ingestion_reap_stale()
