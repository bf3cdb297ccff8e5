"""The Celery app and the queue names, declared once here."""

import enum
import os

from celery import Celery
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class Queue(str, enum.Enum):
    DEFAULT = "default"
    INGEST = "ingest"
    GPU = "gpu"

    def __str__(self) -> str:
        return self.value


ALL_QUEUES = [queue.value for queue in Queue]

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [KombuQueue(name, routing_key=name) for name in ALL_QUEUES]
app.conf.task_default_queue = Queue.DEFAULT.value
app.conf.task_default_routing_key = Queue.DEFAULT.value
app.conf.beat_schedule = {
    # Jobs and ingestion runs whose worker died are failed (and so retryable) instead of hanging.
    "sources-sync-due": {"task": "sources.tasks.sync_due_sources", "schedule": 60.0},
    "ingestion-reap-stale": {"task": "knowledge.ingestion_reap_stale", "schedule": 300.0},
    "reap-stale-jobs": {"task": "core.job_reap_stale", "schedule": 300.0, "options": {"queue": Queue.DEFAULT.value}},
}
app.autodiscover_tasks()
