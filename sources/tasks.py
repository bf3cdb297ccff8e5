"""Thin Celery tasks: one sync (queued on Queue.INGEST by services.source_sync_request, late acks
and time limits from the "source_sync" kind), and the beat-driven check for due sources."""

from celery import shared_task

from core.jobs import task_options

from . import services


@shared_task(**task_options("source_sync"))
def source_sync_task(sync_id: int) -> None:
    services.source_sync_run(sync_id=sync_id)


@shared_task(name="sources.tasks.sync_due_sources")
def sync_due_sources() -> int:
    return len(services.sources_queue_due())
