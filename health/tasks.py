from celery import shared_task


@shared_task(name="health.stale_scan", ignore_result=True)
def stale_scan() -> dict:
    """Daily (beat): stale documents notify their knowledge managers once per period."""
    from .services import stale_scan as run

    return run()
