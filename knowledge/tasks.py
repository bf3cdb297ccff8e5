"""Thin Celery tasks for ingestion: take ids, call the pipeline. The VersionIngestion row is the
truth; a worker killed mid-version leaves a stale heartbeat that core's reaper (`work_reap`)
fails. Late acks and time limits come from the "ingestion" kind (knowledge/apps.py)."""

from celery import shared_task

from core.jobs import task_options

from . import pipeline


@shared_task(**task_options("ingestion"))
def version_ingest(version_id: int) -> None:
    pipeline.version_ingest_batch(version_id=version_id)
