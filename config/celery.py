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
# Long work acknowledges its message only when done (a killed worker's message is redelivered);
# each kind's task also gets its time limits from core.jobs.task_options. Prefetch is 1 (settings).
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.beat_schedule = {
    "sources-sync-due": {"task": "sources.tasks.sync_due_sources", "schedule": 60.0},
    # The one reaper of every kind of background work (core.services.work_reap): rows whose worker
    # died are failed (and so retryable) instead of hanging; rows never sent are sent.
    "work-reap": {"task": "core.work_reap", "schedule": 60.0, "options": {"queue": Queue.DEFAULT.value}},
    # BM25 statistics deltas folded into their base rows (retrieval/indexing.py).
    "bm25-statistics-rollup": {
        "task": "retrieval.bm25_statistics_rollup", "schedule": 60.0, "options": {"queue": Queue.DEFAULT.value},
    },
    # Which chunks a worker's searches returned, written as last-retrieved dates (retrieval/usage.py).
    "retrieval-usage-rollup": {"task": "retrieval.usage_rollup", "schedule": 300.0, "options": {"queue": Queue.DEFAULT.value}},
    # Knowledge health: stale documents, notified once per period (health/services.py).
    "health-stale-scan": {"task": "health.stale_scan", "schedule": 24 * 60 * 60.0, "options": {"queue": Queue.DEFAULT.value}},
    # Knowledge health: unanswered questions grouped (queues a core Job, health/services.py gap_scan).
    "health-gap-scan": {"task": "health.gap_scan", "schedule": 24 * 60 * 60.0, "options": {"queue": Queue.DEFAULT.value}},
}
app.autodiscover_tasks()
