"""Retrieval quality metrics, document-level: a hit is any chunk of a gold document and ranks are
deduplicated by document before they are counted."""

from __future__ import annotations

from collections.abc import Iterable


# Recall@10 counts documents: several top chunks may come from one document, so rankings are
# built from this many chunks and then cut at 10 distinct documents.
CHUNKS_PER_RANKING = 50


def document_ranking(hits: Iterable) -> list[int]:
    """Document ids in order of their first chunk among the hits."""
    seen: list[int] = []
    for hit in hits:
        document_id = hit.chunk.document_id
        if document_id not in seen:
            seen.append(document_id)
    return seen


def first_relevant_rank(ranking: list, relevant: set) -> int | None:
    for rank, document_id in enumerate(ranking[:10], 1):
        if document_id in relevant:
            return rank
    return None


def summarize(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "recall@1": round(sum(1 for r in ranks if r is not None and r <= 1) / n, 4),
        "recall@5": round(sum(1 for r in ranks if r is not None and r <= 5) / n, 4),
        "recall@10": round(sum(1 for r in ranks if r is not None and r <= 10) / n, 4),
        "mrr@10": round(sum(1.0 / r for r in ranks if r is not None) / n, 4),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def abstention_curve(answerable: list[float], unanswerable: list[float], thresholds: list[float]) -> list[dict]:
    """For each threshold: the share of answerable and of unanswerable questions whose relevance
    score falls under it (cut to "no relevant knowledge")."""
    curve = []
    for threshold in thresholds:
        curve.append({
            "threshold": threshold,
            "answerable_abstention": round(sum(1 for s in answerable if s < threshold) / max(1, len(answerable)), 4),
            "unanswerable_abstention": round(sum(1 for s in unanswerable if s < threshold) / max(1, len(unanswerable)), 4),
        })
    return curve
