"""When each chunk was last returned by search, at day granularity, recorded off the request path.

`search()` only adds the returned chunk ids to a set in this process (`record`: no I/O, no SQL).
`rollup()` writes the buffered ids as one statement per batch, an upsert that touches only the
rows whose date moves forward (a chunk searched a hundred times today is written at most once a
day). It runs:

- in the web process after a response has been sent (Django's `request_finished`), at most once per
  `RETRIEVAL_USAGE_ROLLUP_SECONDS` (60 by default), never inside an open transaction;
- in every Celery worker by the beat task `retrieval.usage_rollup` (searches a worker ran).

A process that stops loses at most that interval's ids, which a day-granular "last retrieved" date
can afford.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)
BATCH = 10_000

_lock = threading.Lock()
_pending: dict[dt.date, set[int]] = {}
_last_rollup = time.monotonic()


def record(chunk_ids) -> None:
    """Remember that search returned these chunks today (in memory only)."""
    ids = [int(pk) for pk in chunk_ids]
    if not ids:
        return
    today = timezone.localdate()
    with _lock:
        _pending.setdefault(today, set()).update(ids)


def pending() -> dict[dt.date, set[int]]:
    with _lock:
        return {day: set(ids) for day, ids in _pending.items()}


def _take() -> dict[dt.date, set[int]]:
    global _pending
    with _lock:
        taken, _pending = _pending, {}
    return taken


_UPSERT = """
    INSERT INTO retrieval_chunkretrieval (chunk_id, last_retrieved)
    SELECT c.id, %s FROM knowledge_chunk c WHERE c.id = ANY(%s)
    ON CONFLICT (chunk_id) DO UPDATE SET last_retrieved = EXCLUDED.last_retrieved
    WHERE retrieval_chunkretrieval.last_retrieved < EXCLUDED.last_retrieved
"""


def rollup() -> int:
    """Write the buffered ids: one statement per batch; chunks deleted meanwhile are skipped.
    Returns the number of rows inserted or moved forward."""
    global _last_rollup
    taken = _take()
    _last_rollup = time.monotonic()
    written = 0
    try:
        with connection.cursor() as cursor:
            for day, ids in sorted(taken.items()):
                ordered = sorted(ids)
                for start in range(0, len(ordered), BATCH):
                    cursor.execute(_UPSERT, [day, ordered[start:start + BATCH]])
                    written += max(cursor.rowcount, 0)
    except Exception:
        with _lock:  # keep them for the next roll-up
            for day, ids in taken.items():
                _pending.setdefault(day, set()).update(ids)
        raise
    return written


def rollup_interval() -> float:
    return float(getattr(settings, "RETRIEVAL_USAGE_ROLLUP_SECONDS", 60))


def on_request_finished(sender, **kwargs) -> None:
    """After a response went out: roll up when the interval has passed (never fails the request).
    Not inside a transaction someone else holds open (a test's, a caller's): its writes are not ours."""
    if not _pending or time.monotonic() - _last_rollup < rollup_interval() or connection.in_atomic_block:
        return
    try:
        rollup()
    except Exception:  # noqa: BLE001 - the ids stay buffered for the next try
        logger.exception("Could not record which chunks search returned")
    finally:
        # Django closed the request's connection before this ran (its handler comes first); the one
        # the roll-up opened would otherwise stay idle until this thread's next request.
        connection.close_if_unusable_or_obsolete()
