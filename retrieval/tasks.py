"""Thin Celery tasks of retrieval; late acks and time limits from the "hit_test_run" kind."""

from celery import shared_task

from core.jobs import task_options

from .indexing import statistics_rollup
from .services import hit_test_run_execute
from .usage import rollup


@shared_task(**task_options("hit_test_run"))
def hit_test_run_execute_task(run_id: int) -> None:
    hit_test_run_execute(run_id=run_id)


@shared_task(name="retrieval.bm25_statistics_rollup", ignore_result=True)
def bm25_statistics_rollup() -> None:
    statistics_rollup()


@shared_task(name="retrieval.usage_rollup", ignore_result=True)
def usage_rollup() -> None:
    """Beat: write which chunks this worker's searches returned (retrieval/usage.py)."""
    rollup()
