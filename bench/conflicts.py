"""Full conflict scan over synthetic passages with planted conflicts: time, precision, recall.

Each passage (one document each) states three facts about made-up subjects ("the Zorvakel loan
interest rate", "Zorvakel reimbursement cap", its effective date, its probation period, its hotel
cap for first-tier / other cities), each subject stated in two or three documents in English,
Simplified or Traditional Chinese and in different notations (50,000 元 / 5万元 / RMB 50,000;
4.35% / 4.35 percent; 3 months / 90天). A tenth of the subjects get one statement with another
value (a planted conflict); hotel caps for first-tier and other cities differ on purpose (not a
conflict). The scan is what the on-demand job runs: `health.facts.extract_facts` on every passage,
then `find_conflicts` (blocking by kind, unit and subject key). A predicted pair is right when the
two documents were planted to disagree about that kind of fact.

    nice -n 5 .venv/bin/python bench/conflicts.py --sizes 10000 30000 100000

Prints one line per size, the time ratios against n and n·log n, and a last line of JSON:
{"sizes": [...], "seconds": [...], "precision": p, "recall": r}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from health.facts import extract_facts, find_conflicts  # noqa: E402

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
MONTHS = "January February March April May June July August September October November December".split()


def name(rng: random.Random, used: set) -> str:
    while True:
        word = "".join(rng.choice(SYLLABLES) for _ in range(4)).capitalize()
        if word not in used:
            used.add(word)
            return word


def say(kind: str, who: str, value, rng: random.Random) -> str:
    """One statement of a fact in one of the languages/notations."""
    style = rng.randrange(3)
    if kind == "rate":
        return [f"The {who} loan interest rate is {value}%.", f"{who}貸款利率為{value}%。",
                f"{who} loans carry an interest rate of {value} percent."][style]
    if kind == "cap":
        return [f"The {who} reimbursement limit is {value:,} yuan.", f"{who}报销上限为{value / 10000:g}万元。",
                f"{who}報銷上限為人民幣{value}元。"][style]
    if kind == "date":
        d = value
        return [f"The {who} policy takes effect on {MONTHS[d.month - 1]} {d.day}, {d.year}.",
                f"{who}政策于{d.year}年{d.month}月{d.day}日生效。", f"{who}政策於{d.isoformat()}生效。"][style]
    if kind == "period":
        return [f"The {who} probation period is {value} months.", f"{who}试用期为{value * 30}天。",
                f"{who}試用期為{value}个月。"][style]
    tier, amount = value
    if tier == "tier1":
        return [f"The {who} hotel cap for first-tier cities is {amount} yuan per night.",
                f"{who}一线城市住宿上限每晚{amount}元。", f"{who}一線城市住宿上限每晚{amount}元。"][style]
    return [f"The {who} hotel cap for other cities is {amount} yuan per night.",
            f"{who}其他城市住宿上限每晚{amount}元。", f"{who}其他城市住宿上限每晚{amount}元。"][style]


def value_for(kind: str, rng: random.Random):
    if kind == "rate":
        return round(rng.randrange(300, 600, 5) / 100, 2)
    if kind == "cap":
        return rng.randrange(1, 20) * 10000
    if kind == "date":
        return dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))
    if kind == "period":
        return rng.randrange(1, 7)
    return None


def corpus(n: int, seed: int):
    """n passages of three statements; the planted truth as {(doc, doc, kind)}."""
    rng = random.Random(seed)
    used: set = set()
    statements = []  # (subject id, kind, value, text)
    subject = 0
    while len(statements) < 3 * n:
        subject += 1
        who = name(rng, used)
        kind = rng.choice(["rate", "cap", "date", "period", "hotel"])
        if kind == "hotel":  # two different things with different values
            a, b = rng.randrange(5, 10) * 100, rng.randrange(2, 5) * 100
            for tier, amount in (("tier1", a), ("other", b)):
                for _ in range(2):
                    statements.append((f"{subject}-{tier}", "amount", amount, say("hotel", who, (tier, amount), rng)))
            continue
        value = value_for(kind, rng)
        copies = rng.choice([2, 3])
        planted = rng.random() < 0.1
        for i in range(copies):
            v = value
            if planted and i == copies - 1:
                while v == value:
                    v = value_for(kind, rng)
            statements.append((str(subject), kind, v, say(kind, who, v, rng)))
    rng.shuffle(statements)
    statements = statements[: 3 * n]
    passages = [" ".join(s[3] for s in statements[i * 3:(i + 1) * 3]) for i in range(n)]
    by_subject: dict[str, list] = {}
    for index, (sid, _kind, value, _text) in enumerate(statements):
        by_subject.setdefault(sid, []).append((index // 3, value))
    truth = set()
    for stated in by_subject.values():
        for i, (doc_a, va) in enumerate(stated):
            for doc_b, vb in stated[i + 1:]:
                if doc_a != doc_b and va != vb:
                    truth.add((min(doc_a, doc_b), max(doc_a, doc_b)))
    return passages, truth


def scan(passages: list[str]):
    facts = []
    for doc, text in enumerate(passages):
        facts.extend(extract_facts(text, chunk=doc, document=doc))
    return find_conflicts(facts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000, 100000])
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    scan(["预热 warm-up: 个人贷款利率为4.35%。"])  # load jieba and OpenCC outside the timings
    seconds, hits, predicted, planted = [], 0, 0, 0
    for n in args.sizes:
        passages, truth = corpus(n, args.seed + n)
        started = time.perf_counter()
        pairs = scan(passages)
        elapsed = time.perf_counter() - started
        found = {(min(p.a.document, p.b.document), max(p.a.document, p.b.document)) for p in pairs}
        right = len(found & truth)
        hits, predicted, planted = hits + right, predicted + len(found), planted + len(truth)
        seconds.append(round(elapsed, 2))
        print(f"n={n:>7} seconds={elapsed:8.2f} planted={len(truth)} found={len(found)} right={right} "
              f"precision={right / max(len(found), 1):.3f} recall={right / max(len(truth), 1):.3f}", flush=True)
    base_n, base_t = args.sizes[0], seconds[0]
    for n, t in zip(args.sizes[1:], seconds[1:], strict=True):
        nlogn = (n * math.log(n)) / (base_n * math.log(base_n))
        print(f"n={n}: time ratio {t / base_t:.2f}, n ratio {n / base_n:.2f}, n·log n ratio {nlogn:.2f}")
    print(json.dumps({"sizes": args.sizes, "seconds": seconds, "precision": round(hits / max(predicted, 1), 4),
                      "recall": round(hits / max(planted, 1), 4)}))


if __name__ == "__main__":
    main()
