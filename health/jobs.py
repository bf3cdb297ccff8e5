"""Handlers of health's background jobs (core's generic Job rows, see core/jobs.py).

A scan reads every department's knowledge, but a job row is read by whoever started it: a
user's scan states no figure of the whole (no "x/N" progress, no fraction that gives N away,
no company-wide counts) and ends with the findings that user may see. The totals of a job
without a user (the daily gap scan: company admins only) stay on its row; a user's go to the log."""

import logging

from core.jobs import register

logger = logging.getLogger(__name__)


def _progress(job):
    from core.services import job_progress

    if job.created_by_id is None:
        return lambda fraction, message: job_progress(job=job, fraction=fraction, message=message)
    # A heartbeat only, until done.
    return lambda fraction, message: job_progress(job=job, fraction=1.0 if fraction >= 1.0 else 0.0, message="")


def _result(job, totals: dict, visible) -> dict:
    if job.created_by_id is None:
        return totals
    logger.info("%s job %s: %s", job.kind, job.pk, totals)
    return visible(user=job.created_by)


@register("health_published_check")
def published_check_job(job) -> dict:
    from .services import published_check

    return published_check(added=job.params.get("added", []), removed=job.params.get("removed", []))


@register("health_conflict_scan")
def conflict_scan_job(job) -> dict:
    from .selectors import open_conflict_count
    from .services import conflict_scan_full

    return _result(job, conflict_scan_full(progress=_progress(job)),
                   lambda user: {"open_conflicts": open_conflict_count(user=user)})


@register("health_gap_scan")
def gap_scan_job(job) -> dict:
    from .selectors import gap_group_count
    from .services import gap_scan

    return _result(job, gap_scan(progress=_progress(job)), lambda user: {"gap_groups": gap_group_count(user=user)})
