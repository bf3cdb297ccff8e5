"""Writes of the hit-testing tool: sets, queries, runs (queued on Celery after commit)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from knowledge.models import Chunk, Document

from .evaluation import CHUNKS_PER_RANKING, document_ranking, first_relevant_rank, summarize
from .models import HitTestQuery, HitTestRun, HitTestRunStatus, HitTestSet


@transaction.atomic
def hit_test_set_create(*, actor: Any, knowledge_base, name: str) -> HitTestSet:
    return HitTestSet.objects.create(knowledge_base=knowledge_base, name=name, created_by=actor)


@transaction.atomic
def hit_test_query_add(*, test_set: HitTestSet, query: str, expected_documents: list[Document]) -> HitTestQuery:
    item = HitTestQuery.objects.create(test_set=test_set, query=query)
    item.expected_documents.set([d for d in expected_documents if d.knowledge_base_id == test_set.knowledge_base_id])
    return item


@transaction.atomic
def hit_test_run_start(*, actor: Any, test_set: HitTestSet) -> HitTestRun:
    from config.celery import Queue

    from .tasks import hit_test_run_execute_task

    run = HitTestRun.objects.create(test_set=test_set, started_by=actor)
    transaction.on_commit(lambda: hit_test_run_execute_task.apply_async(args=[run.pk], queue=Queue.DEFAULT.value))
    return run


def hit_test_run_execute(*, run_id: int) -> HitTestRun:
    """Search every query of the set in every mode as the user who started the run."""
    from . import search as search_module

    run = HitTestRun.objects.select_related("test_set__knowledge_base", "started_by").get(pk=run_id)
    HitTestRun.objects.filter(pk=run.pk).update(status=HitTestRunStatus.RUNNING)
    kb = run.test_set.knowledge_base
    try:
        modes = ["bm25", "dense", "hybrid"] + (["hybrid_rerank"] if search_module.rerank_available() else [])
        queries = [(q.query, set(q.expected_documents.values_list("pk", flat=True)))
                   for q in run.test_set.queries.prefetch_related("expected_documents")]
        metrics = {}
        for mode in modes:
            ranks = [
                first_relevant_rank(
                    document_ranking(
                        search_module.search(run.started_by, text, knowledge_bases=[kb], k=CHUNKS_PER_RANKING, mode=mode)
                    ),
                    expected,
                )
                for text, expected in queries
            ]
            metrics[mode] = summarize(ranks)
        space = search_module.active_search_space()
        run.metrics = metrics
        run.context = {
            "queries": len(queries),
            "retrieval_settings": kb.retrieval_settings,
            "embedding_model": space.model_name if space else None,
            "searchable_chunks": Chunk.objects.filter(knowledge_base=kb, searchable=True).count(),
        }
        run.status = HitTestRunStatus.SUCCEEDED
    except Exception as exc:  # noqa: BLE001 - the row records the failure
        run.status = HitTestRunStatus.FAILED
        run.error_message = str(exc)[:2000]
    run.finished_at = timezone.now()
    run.save(update_fields=["metrics", "context", "status", "error_message", "finished_at"])
    return run
