from celery import shared_task

from .services import job_execute


@shared_task(name="core.job_run", acks_late=True)
def job_run(job_id: str) -> None:
    job_execute(job_id=job_id)
