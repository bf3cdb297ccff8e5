from celery import shared_task

from .services import job_execute


@shared_task(name="core.job_run", acks_late=True)
def job_run(job_id: str) -> None:
    job_execute(job_id=job_id)


@shared_task(name="core.job_reap_stale")
def job_reap_stale_task() -> int:
    from .services import job_reap_stale

    return job_reap_stale()
