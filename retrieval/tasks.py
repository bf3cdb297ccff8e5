from celery import shared_task



@shared_task
def hit_test_run_execute_task(run_id: int) -> None:
    from .services import hit_test_run_execute

    hit_test_run_execute(run_id=run_id)
