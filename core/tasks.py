"""Thin Celery tasks of core: the generic Job runner and the one reaper of every kind of work."""

from celery import shared_task

from .jobs import task_options
from .services import job_execute, work_reap


@shared_task(**task_options("job"))
def job_run(job_id: str) -> None:
    job_execute(job_id=job_id)


@shared_task(name="core.work_reap", ignore_result=True)
def work_reap_task() -> dict:
    return work_reap()
