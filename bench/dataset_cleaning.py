"""Dataset cleaning: MinHash-LSH near-duplicate removal vs the exact all-pairs Jaccard baseline.

Rows: questions and answers of CMRC 2018 dev (Chinese) and SQuAD v1.1 dev (English) from
shared/datasets, plus perturbed copies of a seeded 10% of them (a character dropped, punctuation
changed, a particle added): real text with known near duplicates. In one process it times
training.datasets.cleaning.step_near_duplicates (MinHash, 64 permutations, 16 bands, confirmed by
exact Jaccard) and the baseline that compares every pair's character 3-gram sets (same threshold),
and reports the speed ratio and MinHash's recall/precision against the baseline's removals. It also
times parsing + validating the rows as a JSONL upload and PII masking. The last line is JSON.

    .venv/bin/python bench/dataset_cleaning.py [--rows 3000] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from training.datasets.cleaning import jaccard, row_text, shingles, step_near_duplicates  # noqa: E402
from training.datasets.formats import parse_upload  # noqa: E402
from training.datasets.pii import mask_pii  # noqa: E402

DATASETS = Path(os.environ.get("DATASETS_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"))


def load_rows(limit: int) -> list[dict]:
    rows = []
    for corpus in ("cmrc2018", "squad_v1.1_dev"):
        with open(DATASETS / corpus / "dev.jsonl", encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number >= limit // 2:
                    break
                item = json.loads(line)
                rows.append({"question": item["question"], "answer": item["answers"][0]})
    return rows


def perturb(text: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0 and len(text) > 8:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if choice == 1:
        return text.replace("？", "?").replace("?", " ?") + " "
    return text.rstrip("？?") + ("呢？" if any("\u4e00" <= c <= "\u9fff" for c in text) else " then?")


def payload(row: dict) -> dict:
    return {"messages": [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row["answer"]}]}


def baseline(payloads: list[dict], threshold: float) -> set[int]:
    """Keep-first over all pairs: row j is removed when a kept earlier row is ≥ threshold similar."""
    grams = [shingles(row_text(p)) for p in payloads]
    kept: list[int] = []
    removed = set()
    for j, g in enumerate(grams):
        if any(jaccard(g, grams[i]) >= threshold for i in kept):
            removed.add(j)
        else:
            kept.append(j)
    return removed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    rng = random.Random(7)
    rows = load_rows(args.rows)
    copies = [{"question": perturb(r["question"], rng), "answer": r["answer"]} for r in rng.sample(rows, len(rows) // 10)]
    rows = rows + copies
    rng.shuffle(rows)
    payloads = [payload(r) for r in rows]

    started = time.perf_counter()
    _kept, report = step_near_duplicates(list(enumerate(payloads)), args.threshold)
    minhash_s = time.perf_counter() - started
    found = {r["index"] for r in report["removed"]}

    started = time.perf_counter()
    truth = baseline(payloads, args.threshold)
    baseline_s = time.perf_counter() - started

    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    started = time.perf_counter()
    parsed = parse_upload("bench.jsonl", text)
    parse_s = time.perf_counter() - started
    assert parsed.ok, parsed.errors[:3]

    started = time.perf_counter()
    for p in payloads:
        for m in p["messages"]:
            mask_pii(m["content"])
    pii_s = time.perf_counter() - started

    recall = len(found & truth) / len(truth) if truth else 1.0
    precision = len(found & truth) / len(found) if found else 1.0
    print(f"rows: {len(rows)} ({len(copies)} perturbed copies), threshold {args.threshold}")
    print(f"near duplicates: MinHash {minhash_s:.2f} s ({len(found)} removed), all-pairs baseline {baseline_s:.2f} s ({len(truth)} removed)")
    print(f"speed-up {baseline_s / minhash_s:.1f}x, recall {recall:.3f}, precision {precision:.3f}")
    print(f"upload parse+validate: {len(rows) / parse_s:.0f} rows/s; PII masking: {len(rows) / pii_s:.0f} rows/s")
    print(json.dumps({
        "rows": len(rows), "minhash_s": round(minhash_s, 3), "baseline_s": round(baseline_s, 3),
        "speedup": round(baseline_s / minhash_s, 2), "recall": round(recall, 4), "precision": round(precision, 4),
        "parse_rows_per_s": round(len(rows) / parse_s), "pii_rows_per_s": round(len(rows) / pii_s),
    }))


if __name__ == "__main__":
    main()
