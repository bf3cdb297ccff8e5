"""Handlers of health's background jobs (core's generic Job rows, see core/jobs.py)."""

from core.jobs import register


@register("health_published_check")
def published_check_job(job) -> dict:
    from .services import published_check

    return published_check(added=job.params.get("added", []), removed=job.params.get("removed", []))


@register("health_conflict_scan")
def conflict_scan_job(job) -> dict:
    from core.services import job_progress

    from .services import conflict_scan_full

    return conflict_scan_full(progress=lambda fraction, message: job_progress(job=job, fraction=fraction, message=message))


@register("health_gap_scan")
def gap_scan_job(job) -> dict:
    from core.services import job_progress

    from .services import gap_scan

    return gap_scan(progress=lambda fraction, message: job_progress(job=job, fraction=fraction, message=message))
