import datetime as dt
import os
import socket
import traceback
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .jobs import get_kind
from .models import Job, JobStatus
from .policy import job_policy


@transaction.atomic
def job_create(*, actor: Any, kind: str, params: dict | None = None, check_permission: bool = True) -> Job:
    """Create a job row and queue it once the transaction commits."""
    if check_permission and not job_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    job_kind = get_kind(kind)
    job = Job.objects.create(
        kind=kind,
        queue=job_kind.queue.value,
        params=params or {},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: job_dispatch(job_id=job.pk, queue=job.queue))
    return job


def job_dispatch(*, job_id: Any, queue: str) -> None:
    from .tasks import job_run

    job_run.apply_async(args=[str(job_id)], queue=queue)


def job_progress(*, job: Job, fraction: float, message: str = "") -> None:
    fraction = min(max(fraction, 0.0), 1.0)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(progress=fraction, message=message[:500], heartbeat_at=now)
    job.progress, job.message, job.heartbeat_at = fraction, message, now


def job_execute(*, job_id: Any) -> Job | None:
    """Run one job in this process: the Celery task calls this, and so can a test."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return job
        job.status = JobStatus.RUNNING
        job.started_at = job.heartbeat_at = timezone.now()
        job.attempts = F("attempts") + 1
        job.worker = f"{socket.gethostname()}:{os.getpid()}"
        job.error = ""
        job.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "worker", "error"])
        job.refresh_from_db()
    try:
        result = get_kind(job.kind).handler(job) or {}
    except Exception as exc:  # the job row records every failure; nothing stays "running"
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=5)}",
            finished_at=timezone.now(),
        )
    else:
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED, progress=1.0, result=result, finished_at=timezone.now(), message=""
        )
    job.refresh_from_db()
    return job


def job_reap_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=15)) -> int:
    """Fail running jobs whose worker stopped sending heartbeats, so they can be retried."""
    cutoff = timezone.now() - older_than
    return Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=JobStatus.FAILED, error="The worker stopped responding; the job can be retried.", finished_at=timezone.now()
    )
