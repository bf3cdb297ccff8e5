"""Thin Celery tasks: one sync (queued on Queue.INGEST by services.source_sync_request), and the
beat-driven check for due sources (default queue)."""

from celery import shared_task

from . import services

SYNC_TIME_LIMIT_S = 30 * 60


@shared_task(
    name="sources.tasks.source_sync_task",
    acks_late=True,
    soft_time_limit=SYNC_TIME_LIMIT_S,
    time_limit=SYNC_TIME_LIMIT_S + 60,
)
def source_sync_task(sync_id: int) -> None:
    services.source_sync_run(sync_id=sync_id)


@shared_task(name="sources.tasks.sync_due_sources")
def sync_due_sources() -> int:
    return len(services.sources_queue_due())
