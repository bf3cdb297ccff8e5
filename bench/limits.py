"""What API-key authentication and the database-counted limits add to a request.

Creates a throwaway database (dropped at the end) and times, per call, in one process:
- baseline: one ORM read by primary key (`User.objects.filter(pk=…).first()`), what any
  authenticated request already pays to load its user;
- `api_key_user(key)`: the key lookup (SHA-256 + one indexed query);
- `chat_request_admit(user)`: the department quota sum and the per-minute counter upsert;
- `usage_record(...)`: the daily usage upsert;
- `login_guard(...)`: the two sign-in counters.
Prints p50/p95 in ms and the ratio of each p50 to the baseline's; last line JSON.

    .venv/bin/python bench/limits.py [--repeat 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

BENCH_DATABASE = os.environ.get("BENCH_DATABASE_NAME", "bench_limits")


def timed(fn, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 3), "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from accounts.authentication import api_key_user
        from accounts.limits import chat_request_admit, login_guard, usage_record
        from accounts.models import Department, Membership, Role, User
        from accounts.services import api_key_create

        settings.CHAT_USER_REQUESTS_PER_MINUTE = 10**9  # measure the counting, never refuse
        department = Department.objects.create(name="Credit", code="credit")
        user = User.objects.create(username="bench")
        Membership.objects.create(user=user, department=department, role=Role.EMPLOYEE)
        for i in range(2000):  # a month of usage rows for other users of the department
            usage_record(user=User.objects.create(username=f"u{i}") if i < 50 else user, prompt_tokens=10,
                         completion_tokens=5)
        _, key = api_key_create(user=user)

        def baseline():
            User.objects.filter(pk=user.pk).first()

        cases = {
            "baseline_orm_get": baseline,
            "api_key_user": lambda: api_key_user(key),
            "chat_request_admit": lambda: chat_request_admit(user=user),
            "usage_record": lambda: usage_record(user=user, prompt_tokens=100, completion_tokens=20, latency_ms=5),
            "login_guard": lambda: login_guard(ip="10.0.0.1", username="bench"),
        }
        for fn in cases.values():  # warm up
            fn()
        results = {name: timed(fn, args.repeat) for name, fn in cases.items()}
        base = results["baseline_orm_get"]["p50_ms"] or 1e-9
        print(f"{'case':22} {'p50 ms':>8} {'p95 ms':>8} {'x baseline':>10}")
        for name, r in results.items():
            r["ratio"] = round(r["p50_ms"] / base, 2)
            print(f"{name:22} {r['p50_ms']:8.3f} {r['p95_ms']:8.3f} {r['ratio']:10.2f}")
        print(json.dumps({"repeat": args.repeat, **results}))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
