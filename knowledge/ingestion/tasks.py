"""Thin background tasks of ingestion: take ids, call a service. The VersionIngestion row is the
truth; a worker killed mid-version leaves a stale heartbeat that core's reaper (`work_reap`)
fails. Late acks and time limits come from the "ingestion" kind (knowledge/apps.py). Imported by
KnowledgeConfig.ready(), so every process knows the task and the re-embedding job kind."""

from celery import shared_task

from config.celery import Queue
from core.jobs import register, task_options

from . import services


@shared_task(**task_options("ingestion"))
def version_ingest(version_id: int) -> None:
    services.version_ingest_batch(version_id=version_id)


@register(services.REBUILD_JOB_KIND, queue=Queue.INGEST)
def embedding_space_build(job) -> dict:
    return services.embedding_space_build(job=job)
