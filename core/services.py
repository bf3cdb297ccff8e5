"""Writes of background work (every kind, see core/jobs.py) and of the generic Job rows."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import traceback
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .jobs import JobFailed, WorkKind, get_kind, work_kind, work_kinds
from .models import Job, JobStatus
from .policy import job_policy

logger = logging.getLogger(__name__)

# Sending a message rides over a broker blip, but a broker that is down costs a request at most
# a few hundred milliseconds: the row stays unsent and the reaper sends it later.
DISPATCH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.2}
# Rows the reaper sends per kind and run.
REAP_DISPATCH_LIMIT = 500


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def _kind(kind: str | WorkKind) -> WorkKind:
    return kind if isinstance(kind, WorkKind) else work_kind(kind)


# --- every kind of background work -----------------------------------------------------------------


def work_enqueue(*, kind: str | WorkKind, row: Any, **fields: Any) -> Any:
    """Put a row (new, or failed for a retry) in the queued state in the caller's transaction and
    send its task once that transaction commits. The row is saved with `fields` as well."""
    kind = _kind(kind)
    values = {
        "status": kind.queued, "attempts": row.attempts, "started_at": None, "finished_at": None,
        "heartbeat_at": None, "worker": "", "dispatched_at": None, kind.error_field: "",
        kind.queued_at_field: timezone.now(), **fields,
    }
    if hasattr(row, "progress"):
        values.setdefault("progress", 0.0)
    for name, value in values.items():
        setattr(row, name, value)
    if row.pk is None:
        row.save(force_insert=True)
    else:
        row.save(update_fields=list(values))
    pk = row.pk
    # robust: whatever goes wrong while sending is logged, never turned into an error of the
    # request that committed; the reaper sends the row later.
    transaction.on_commit(lambda: work_dispatch(kind=kind, pks=[pk]), robust=True)
    return row


def work_dispatch(*, kind: str | WorkKind, pks: list[Any]) -> int:
    """Send the task of each row still queued; returns how many were sent. A broker error is
    logged, never raised: the rows stay unsent (`dispatched_at` empty) and the reaper sends them."""
    from config.celery import app

    kind = _kind(kind)
    model = kind.model_class
    columns = ["pk", kind.task_arg] + (["queue"] if any(f.name == "queue" for f in model._meta.fields) else [])
    rows = list(model.objects.filter(pk__in=pks, status=kind.queued).values_list(*columns))
    sent = []
    for pk, arg, *queue in rows:
        try:
            app.send_task(
                kind.task, args=[str(arg) if not isinstance(arg, int) else arg],
                queue=(queue[0] if queue and queue[0] else kind.queue.value),
                retry=True, retry_policy=DISPATCH_RETRY_POLICY,
            )
        except Exception:  # noqa: BLE001 - the broker is down: the reaper sends the rest later
            logger.warning("Could not queue %s %s; the reaper will send it", kind.name, pk, exc_info=True)
            break
        sent.append(pk)
    if sent:
        model.objects.filter(pk__in=sent).update(dispatched_at=timezone.now())
    return len(sent)


def work_claim(*, kind: str | WorkKind, pks: list[Any], **reset: Any) -> list[Any]:
    """Take rows for this worker (in pks order): every row not finished and not held by a worker
    that is still beating becomes `kind.claimed`, attempts + 1, with this worker's name and a fresh
    heartbeat (and `reset` fields). One transaction; returns the claimed rows, updated in memory."""
    kind = _kind(kind)
    model = kind.model_class
    now, worker = timezone.now(), worker_name()
    with transaction.atomic():
        # Keyed by text: a task receives a UUID primary key as a string.
        rows = {str(row.pk): row for row in model.objects.select_for_update().filter(pk__in=pks)}
        claimed = []
        for pk in dict.fromkeys(str(pk) for pk in pks):
            row = rows.get(pk)
            if row is None or row.status in kind.finished:
                continue
            if row.status in kind.running and row.heartbeat_at and row.heartbeat_at > now - kind.stale_after:
                continue  # another worker holds it and is alive
            claimed.append(row)
        values = {
            "status": kind.claimed, "started_at": now, "heartbeat_at": now, "finished_at": None, "worker": worker,
            kind.error_field: "", **reset,
        }
        if claimed:
            # Every claimed row gets the same values: one UPDATE, not one per row.
            model.objects.filter(pk__in=[row.pk for row in claimed]).update(attempts=F("attempts") + 1, **values)
        for row in claimed:
            row.attempts += 1
            for name, value in values.items():
                setattr(row, name, value)
    return claimed


def work_owned(rows: list[Any]) -> Q:
    """Rows as this worker claimed them (same worker, same attempt): a row reaped and taken by
    another worker meanwhile no longer matches."""
    by_claim: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        by_claim.setdefault((row.worker, row.attempts), []).append(row.pk)
    owned = Q(pk__in=[])
    for (worker, attempts), pks in by_claim.items():
        owned |= Q(pk__in=pks, worker=worker, attempts=attempts)
    return owned


def work_heartbeat(*, kind: str | WorkKind, rows: list[Any], **fields: Any) -> int:
    """Heartbeat (and progress or other fields) of the rows this worker still owns and that are
    still running; returns how many it updated (0: the reaper failed them meanwhile)."""
    kind = _kind(kind)
    if not rows:
        return 0
    fields["heartbeat_at"] = timezone.now()
    for row in rows:
        for name, value in fields.items():
            setattr(row, name, value)
    return kind.model_class.objects.filter(work_owned(rows), status__in=kind.running).update(**fields)


def work_finish(*, kind: str | WorkKind, row: Any, status: str | None = None, **fields: Any) -> bool:
    """Record the end of an owned, running row (default: the first finished status); False when
    the row was reaped or retaken meanwhile (then nothing is written)."""
    kind = _kind(kind)
    now = timezone.now()
    values = {"status": status or kind.finished[0], "finished_at": now, "heartbeat_at": now, **fields}
    if hasattr(row, "progress") and values["status"] != kind.failed:
        values.setdefault("progress", 1.0)
    updated = kind.model_class.objects.filter(work_owned([row]), status__in=kind.running).update(**values)
    if updated:
        for name, value in values.items():
            setattr(row, name, value)
    return bool(updated)


def work_fail(*, kind: str | WorkKind, row: Any, error: str, **fields: Any) -> bool:
    kind = _kind(kind)
    return work_finish(kind=kind, row=row, status=kind.failed, **{kind.error_field: error, **fields})


def work_reap(*, now: dt.datetime | None = None, kinds: list[str] | None = None) -> dict[str, dict[str, int]]:
    """The one reaper (Celery beat, every minute): for every kind, fail running rows whose worker
    stopped beating (so they can be retried) and send queued rows that were never sent, or whose
    message seems lost. Returns {kind: {"failed": n, "dispatched": m}}."""
    now = now or timezone.now()
    report = {}
    for kind in work_kinds():
        if kinds is not None and kind.name not in kinds:
            continue
        model = kind.model_class
        cutoff = now - kind.stale_after
        stale = Q(status__in=kind.running) & (
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
            | Q(heartbeat_at__isnull=True, started_at__isnull=True)
        )
        failed = model.objects.filter(stale).update(
            status=kind.failed, finished_at=now, **{kind.error_field: str(kind.lost_message)}, **kind.lost_fields
        )
        queued_at = kind.queued_at_field
        unsent = Q(status=kind.queued) & (
            Q(dispatched_at__isnull=True, **{f"{queued_at}__lt": now - kind.undispatched_after})
            | Q(dispatched_at__lt=now - kind.redispatch_after)
        )
        pks = list(model.objects.filter(unsent).order_by(queued_at, "pk").values_list("pk", flat=True)[:REAP_DISPATCH_LIMIT])
        dispatched = work_dispatch(kind=kind, pks=pks) if pks else 0
        if failed or dispatched:
            logger.info("reaper: %s failed %s, sent %s", kind.name, failed, dispatched)
        report[kind.name] = {"failed": failed, "dispatched": dispatched}
    return report


# --- the generic kind "job" ----------------------------------------------------------------------


@transaction.atomic
def job_create(*, actor: Any, kind: str, params: dict | None = None, check_permission: bool = True) -> Job:
    """Create a job row and queue it once the transaction commits."""
    if check_permission and not job_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    job_kind = get_kind(kind)
    job = Job(
        kind=kind,
        queue=job_kind.queue.value,
        params=params or {},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    return work_enqueue(kind="job", row=job)


def job_progress(*, job: Job, fraction: float, message: str = "") -> None:
    fraction = min(max(fraction, 0.0), 1.0)
    work_heartbeat(kind="job", rows=[job], progress=fraction, message=message[:500])


def job_execute(*, job_id: Any) -> Job | None:
    """Run one job in this process: the Celery task calls this, and so can a test."""
    claimed = work_claim(kind="job", pks=[job_id])
    if not claimed:
        return Job.objects.filter(pk=job_id).first()  # finished, missing, or a live worker has it
    job = claimed[0]
    try:
        result = get_kind(job.kind).handler(job) or {}
    except JobFailed as exc:
        work_fail(kind="job", row=job, error=str(exc))
    except Exception as exc:  # the job row records every failure (soft time limit included)
        work_fail(kind="job", row=job, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=5)}")
    else:
        work_finish(kind="job", row=job, status=JobStatus.SUCCEEDED, result=result, message="")
    job.refresh_from_db()
    return job


@transaction.atomic
def job_retry(*, actor: Any, job: Job) -> Job:
    """Queue a failed job again (who may start jobs only)."""
    if not job_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status != JobStatus.FAILED:
        raise ValidationError(_("Only a failed job can be retried."), code="not_failed")
    return work_enqueue(kind="job", row=job, result={}, message="")
