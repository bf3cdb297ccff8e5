"""Writes of the hit-testing tool: sets, queries, runs (queued on Celery after commit)."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

from core.services import work_claim, work_enqueue, work_fail, work_finish, work_heartbeat
from knowledge.models import Chunk, Document

from . import search as search_module
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


WORK_KIND = "hit_test_run"  # core background work, registered in retrieval/apps.py
HEARTBEAT_EVERY_S = 5.0


@transaction.atomic
def hit_test_run_start(*, actor: Any, test_set: HitTestSet) -> HitTestRun:
    """Queue a run; its task is sent on commit (or by core's reaper if the broker was down)."""
    return work_enqueue(kind=WORK_KIND, row=HitTestRun(test_set=test_set, started_by=actor))


def hit_test_run_execute(*, run_id: int) -> HitTestRun:
    """Search every query of the set in every mode as the user who started the run."""
    claimed = work_claim(kind=WORK_KIND, pks=[run_id])
    if not claimed:
        return HitTestRun.objects.get(pk=run_id)  # finished, or another live worker has it
    run = claimed[0]
    run = HitTestRun.objects.select_related("test_set__knowledge_base", "started_by").get(pk=run.pk)
    kb = run.test_set.knowledge_base
    try:
        modes = ["bm25", "dense", "hybrid"] + (["hybrid_rerank"] if search_module.rerank_available() else [])
        queries = [(q.query, set(q.expected_documents.values_list("pk", flat=True)))
                   for q in run.test_set.queries.prefetch_related("expected_documents")]
        metrics = {}
        total, done, last_beat = max(1, len(modes) * len(queries)), 0, time.monotonic()
        for mode in modes:
            ranks = []
            for text, expected in queries:
                hits = search_module.search(run.started_by, text, knowledge_bases=[kb], k=CHUNKS_PER_RANKING, mode=mode,
                                             record=False)
                ranks.append(first_relevant_rank(document_ranking(hits), expected))
                done += 1
                if time.monotonic() - last_beat > HEARTBEAT_EVERY_S:
                    work_heartbeat(kind=WORK_KIND, rows=[run], progress=round(done / total, 4))
                    last_beat = time.monotonic()
            metrics[mode] = summarize(ranks)
        space = search_module.active_search_space()
        context = {
            "queries": len(queries),
            "retrieval_settings": kb.retrieval_settings,
            "embedding_model": space.model_name if space else None,
            "searchable_chunks": Chunk.objects.filter(knowledge_base=kb, searchable=True).count(),
        }
    except Exception as exc:  # noqa: BLE001 - the row records the failure (soft time limit included)
        work_fail(kind=WORK_KIND, row=run, error=str(exc)[:2000])
    else:
        work_finish(kind=WORK_KIND, row=run, status=HitTestRunStatus.SUCCEEDED, metrics=metrics, context=context)
    run.refresh_from_db()
    return run
