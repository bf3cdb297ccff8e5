from celery import shared_task


@shared_task(name="health.stale_scan", ignore_result=True)
def stale_scan() -> dict:
    """Daily (beat): stale documents notify their knowledge managers once per period."""
    from .services import stale_scan as run

    return run()


@shared_task(name="health.gap_scan", ignore_result=True)
def gap_scan() -> None:
    """Daily (beat): queue the gap scan as a core Job (its row is the truth; the page shows it)."""
    from .services import gap_scan_start

    gap_scan_start()
