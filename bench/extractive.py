"""The extractive backend's sentence selection in the reference's setting, without a database:
BM25 (this project's tokenizer: jieba for Chinese, stemmed words for English; k1 1.5, b 0.75) over
the whole corpus picks the top passage, and `llm.extractive.pick_sentences` (IDF from the same
corpus) answers from it. This isolates what the extractive backend adds from the product's
retrieval, to compare with the issue's reference (BM25 top passage + its best IDF-overlap
sentence). It is not `evaluate_chat` (no product search, no no-answer cut, no abstention).

    .venv/bin/python bench/extractive.py ../shared/datasets/cmrc2018 [--split test] [--params JSON]

Last line JSON: {"split", "questions", "answer_contains", "f1", "top_passage_gold", "mean_answer_chars"}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from chat import evaluation as ev  # noqa: E402
from llm import extractive  # noqa: E402
from retrieval.tokenize import tokenize  # noqa: E402


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--params", default="{}", help="JSON overrides of the extractive parameters.")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    directory = Path(args.directory)
    corpus = [json.loads(line) for line in (directory / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    queries = [json.loads(line) for line in (directory / f"{args.split}.jsonl").open(encoding="utf-8") if line.strip()]
    if args.limit:
        queries = queries[: args.limit]
    params = json.loads(args.params)

    tfs = [Counter(tokenize(row["text"])) for row in corpus]
    lengths = [sum(tf.values()) for tf in tfs]
    average = sum(lengths) / len(lengths)
    df: Counter = Counter()
    postings: dict[str, list[int]] = {}
    for i, tf in enumerate(tfs):
        for term in tf:
            df[term] += 1
            postings.setdefault(term, []).append(i)
    n = len(corpus)

    def idf(term: str) -> float:
        return math.log(1 + (n - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))

    contains = f1 = gold_top = chars = 0.0
    for query in queries:
        terms = tokenize(query["question"])
        scores: Counter = Counter()
        for term in set(terms):
            weight = idf(term)
            for i in postings.get(term, ()):
                tf = tfs[i][term]
                scores[i] += weight * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * lengths[i] / average))
        if not scores:
            continue
        top = max(scores, key=lambda i: (scores[i], -i))
        gold_top += corpus[top]["id"] in query["relevant_ids"]
        answer = extractive.compose(extractive.pick_sentences(
            query["question"], [extractive.Passage(1, corpus[top]["text"], 1.0)],
            idf={t: idf(t) for t in set(terms)}, params=params))
        contains += ev.contains(answer, query["answers"])
        f1 += ev.f1(answer, query["answers"])
        chars += len(ev.strip_markers(answer))
    total = len(queries) or 1
    return {"split": args.split, "questions": len(queries), "params": params,
            "answer_contains": round(contains / total, 4), "f1": round(f1 / total, 4),
            "top_passage_gold": round(gold_top / total, 4), "mean_answer_chars": round(chars / total, 1)}


if __name__ == "__main__":
    print(json.dumps(main()))
