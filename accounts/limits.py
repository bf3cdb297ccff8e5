"""Rate limits and token quotas, counted in PostgreSQL so that every process shares them.

- `chat_request_admit(user=...)`: before a chat answer (page or /v1). Refuses with `RateLimited`
  when the user's department has used its daily token quota, or the user has sent more requests
  this minute than allowed.
- `usage_record(user=..., prompt_tokens=..., completion_tokens=..., latency_ms=...)`: after an
  answer, charges its tokens to the user's department for today.
- `login_attempt(...)` (in the authentication backend) / `login_guard(...)` (the pages' early
  check): failed sign-ins per client IP and per username.

Windows are fixed (aligned to the epoch), so the moment a refused client may ask again is exact:
the end of the window, or the next midnight (settings.TIME_ZONE) for a daily quota.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext

from .models import DepartmentQuota, Membership, RateLimitCounter, UsageDay

_COUNTER = RateLimitCounter._meta.db_table
_USAGE = UsageDay._meta.db_table


def wait_text(seconds: int) -> str:
    """'in 40 seconds', 'in 5 minutes', 'in 3 hours', in the active language."""
    seconds = max(1, int(seconds))
    if seconds < 120:
        return ngettext("in %(n)d second", "in %(n)d seconds", seconds) % {"n": seconds}
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return ngettext("in %(n)d minute", "in %(n)d minutes", minutes) % {"n": minutes}
    hours = math.ceil(seconds / 3600)
    return ngettext("in %(n)d hour", "in %(n)d hours", hours) % {"n": hours}


@dataclass
class RateLimited(Exception):
    """A refusal. `retry_after` is whole seconds until the request would be admitted."""

    reason: str  # "rate" | "quota" (the department's) | "user_quota" (a user in no department) | "login"
    retry_after: int
    limit: int
    retry_at: datetime

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        """The refusal in the active language, saying when to ask again."""
        when = wait_text(self.retry_after)
        at = formats.time_format(timezone.localtime(self.retry_at), "H:i")
        if self.reason in ("quota", "user_quota"):
            text = (gettext("Your department has used its daily quota of %(limit)s tokens. You may ask again %(when)s (at %(at)s).")
                    if self.reason == "quota" else
                    gettext("You have used your daily quota of %(limit)s tokens. You may ask again %(when)s (at %(at)s)."))
            return text % {"limit": formats.number_format(self.limit, force_grouping=True), "when": when, "at": at}
        if self.reason == "login":
            return gettext("Too many failed sign-in attempts. You may try again %(when)s.") % {"when": when}
        return ngettext(
            "You may send %(limit)d request per minute. You may ask again %(when)s.",
            "You may send %(limit)d requests per minute. You may ask again %(when)s.",
            self.limit,
        ) % {"limit": self.limit, "when": when}


# ---------------------------------------------------------------------------------------------
# Counters


def _window(now: datetime, seconds: int) -> tuple[datetime, datetime]:
    start_ts = int(now.timestamp()) // seconds * seconds
    start = datetime.fromtimestamp(start_ts, tz=UTC)
    return start, start + timedelta(seconds=seconds)


def counter_hit(key: str, *, window_seconds: int, now: datetime | None = None) -> tuple[int, datetime]:
    """Count one hit of `key` in the current window; returns (hits so far, window end).
    One atomic upsert, so concurrent processes never lose a hit."""
    now = now or timezone.now()
    start, end = _window(now, window_seconds)
    with transaction.atomic(), connection.cursor() as cursor:
        _no_flush_wait(cursor)
        cursor.execute(
            f"INSERT INTO {_COUNTER} (key, window_start, window_end, count) VALUES (%s, %s, %s, 1) "
            f"ON CONFLICT (key, window_start) DO UPDATE SET count = {_COUNTER}.count + 1 RETURNING count",
            [key[:200], start, end],
        )
        count = cursor.fetchone()[0]
    if count == 1 and random.random() < 0.02:
        counters_prune(now=now)
    return count, end


def _no_flush_wait(cursor) -> None:
    """A counter may lose its last hits if the server crashes: not worth waiting for a WAL flush on
    every request. Only when the counter write is its own transaction (not nested in another)."""
    if not connection.in_atomic_block or connection.savepoint_ids:
        return
    cursor.execute("SET LOCAL synchronous_commit TO OFF")


def counter_peek(key: str, *, window_seconds: int, now: datetime | None = None) -> tuple[int, datetime]:
    now = now or timezone.now()
    start, end = _window(now, window_seconds)
    row = RateLimitCounter.objects.filter(key=key[:200], window_start=start).values_list("count", flat=True).first()
    return row or 0, end


def counters_prune(*, now: datetime | None = None) -> int:
    """Delete windows that ended more than an hour ago."""
    cutoff = (now or timezone.now()) - timedelta(hours=1)
    deleted, _ = RateLimitCounter.objects.filter(window_end__lt=cutoff).delete()
    return deleted


def _retry(end: datetime, now: datetime) -> int:
    return max(1, math.ceil((end - now).total_seconds()))


# ---------------------------------------------------------------------------------------------
# Chat: requests per minute and daily department quota


def charged_department_id(user: Any) -> int | None:
    """The department a user's chat usage is charged to: their oldest membership (none: the user's
    own daily quota, CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS)."""
    return (
        Membership.objects.filter(user_id=user.pk)
        .order_by("created_at", "pk")
        .values_list("department_id", flat=True)
        .first()
    )


@dataclass(frozen=True)
class Limits:
    department_id: int | None
    requests_per_minute: int  # 0: unlimited
    daily_tokens: int  # 0: unlimited


def limits_for(user: Any) -> Limits:
    """The user's limits: their department's overrides, else the settings (one query)."""
    membership = (
        Membership.objects.filter(user_id=user.pk)
        .order_by("created_at", "pk")
        .select_related("department__quota")
        .first()
    )
    rpm = settings.CHAT_USER_REQUESTS_PER_MINUTE
    if membership is None:
        return Limits(department_id=None, requests_per_minute=rpm, daily_tokens=settings.CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS)
    daily = settings.CHAT_DEPARTMENT_DAILY_TOKENS
    try:
        quota = membership.department.quota
    except DepartmentQuota.DoesNotExist:
        quota = None
    if quota is not None:
        rpm = quota.user_requests_per_minute if quota.user_requests_per_minute is not None else rpm
        daily = quota.daily_tokens if quota.daily_tokens is not None else daily
    return Limits(department_id=membership.department_id, requests_per_minute=rpm, daily_tokens=daily)


def _next_midnight(now: datetime) -> datetime:
    local = timezone.localtime(now)
    tomorrow = local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(tomorrow, datetime.min.time()), local.tzinfo)


def tokens_today(*, department_id: int | None, user_id: int | None = None, now: datetime | None = None) -> int:
    """Tokens charged today to a department, or (department None) to a user while in no department."""
    day = timezone.localdate(now or timezone.now())
    rows = (UsageDay.objects.filter(department_id=department_id, day=day) if department_id
            else UsageDay.objects.filter(department__isnull=True, user_id=user_id, day=day))
    totals = rows.aggregate(p=models.Sum("prompt_tokens"), c=models.Sum("completion_tokens"))
    return int(totals["p"] or 0) + int(totals["c"] or 0)


def chat_request_admit(*, user: Any, now: datetime | None = None) -> Limits:
    """Admit one chat request of `user` or raise RateLimited. The quota is checked before the
    answer and charged after it (usage_record), so one answer may cross it; the next is refused."""
    now = now or timezone.now()
    limits = limits_for(user)
    if limits.daily_tokens:
        if tokens_today(department_id=limits.department_id, user_id=user.pk, now=now) >= limits.daily_tokens:
            retry_at = _next_midnight(now)
            reason = "quota" if limits.department_id else "user_quota"
            raise RateLimited(reason, _retry(retry_at, now), limits.daily_tokens, retry_at)
    if limits.requests_per_minute:
        count, end = counter_hit(f"chat:user:{user.pk}", window_seconds=60, now=now)
        if count > limits.requests_per_minute:
            raise RateLimited("rate", _retry(end, now), limits.requests_per_minute, end)
    return limits


def usage_record(
    *, user: Any, prompt_tokens: int, completion_tokens: int, latency_ms: int = 0, now: datetime | None = None
) -> None:
    """Charge one answer to the user's department for today (one atomic upsert)."""
    day = timezone.localdate(now or timezone.now())
    department_id = charged_department_id(user)
    with transaction.atomic(), connection.cursor() as cursor:
        _no_flush_wait(cursor)
        cursor.execute(
            f"INSERT INTO {_USAGE} (day, department_id, user_id, requests, prompt_tokens, completion_tokens, latency_ms) "
            "VALUES (%s, %s, %s, 1, %s, %s, %s) "
            "ON CONFLICT (day, user_id, department_id) DO UPDATE SET "
            f"requests = {_USAGE}.requests + 1, prompt_tokens = {_USAGE}.prompt_tokens + EXCLUDED.prompt_tokens, "
            f"completion_tokens = {_USAGE}.completion_tokens + EXCLUDED.completion_tokens, "
            f"latency_ms = {_USAGE}.latency_ms + EXCLUDED.latency_ms",
            [day, department_id, user.pk, max(0, int(prompt_tokens)), max(0, int(completion_tokens)), max(0, int(latency_ms))],
        )


# ---------------------------------------------------------------------------------------------
# Sign-in: failed attempts per IP and per username


def _login_keys(ip: str | None, username: str | None) -> list[tuple[str, int]]:
    keys = []
    if ip and settings.LOGIN_FAILURES_PER_IP:
        keys.append((f"login:ip:{ip}", settings.LOGIN_FAILURES_PER_IP))
    name = (username or "").strip().lower()
    if name and settings.LOGIN_FAILURES_PER_USERNAME:
        keys.append((f"login:user:{name[:150]}", settings.LOGIN_FAILURES_PER_USERNAME))
    return keys


def login_guard(*, ip: str | None, username: str | None, now: datetime | None = None) -> None:
    """Raise RateLimited when this IP or this username has failed too often in the window (a check
    the sign-in pages make first, for their 429 and its wait; `login_attempt` is what holds)."""
    now = now or timezone.now()
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for key, limit in _login_keys(ip, username):
        count, end = counter_peek(key, window_seconds=window, now=now)
        if count >= limit:
            raise RateLimited("login", _retry(end, now), limit, end)


def login_attempt(*, ip: str | None, username: str | None, now: datetime | None = None) -> Callable[[], None]:
    """Count one sign-in attempt for this IP and this username before the password is checked (one
    atomic upsert per key), so that guesses sent in parallel cannot all pass a check made before any
    of them failed. Raises RateLimited, the attempt not counted, when either is over its limit.
    Returns the function that takes the attempt back when the password was right: what stays
    counted is the failures."""
    now = now or timezone.now()
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    counted: list[str] = []
    for key, limit in _login_keys(ip, username):
        count, end = counter_hit(key, window_seconds=window, now=now)
        counted.append(key)
        if count > limit:
            _counters_take_back(counted, window_seconds=window, now=now)
            raise RateLimited("login", _retry(end, now), limit, end)
    return lambda: _counters_take_back(counted, window_seconds=window, now=now)


def _counters_take_back(keys: list[str], *, window_seconds: int, now: datetime) -> None:
    """One hit fewer for each key in the window of `now` (never under zero)."""
    if not keys:
        return
    start, _end = _window(now, window_seconds)
    with transaction.atomic(), connection.cursor() as cursor:
        _no_flush_wait(cursor)
        cursor.execute(
            f"UPDATE {_COUNTER} SET count = GREATEST(count - 1, 0) WHERE key = ANY(%s) AND window_start = %s",
            [[key[:200] for key in keys], start],
        )
