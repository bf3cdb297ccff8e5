"""Per-user requests per minute and per-department daily token quotas, on the chat page; the
counters themselves; usage charged to the right department."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.limits import RateLimited, chat_request_admit, counter_hit, counters_prune, usage_record
from accounts.models import DepartmentQuota, RateLimitCounter, UsageDay
from accounts.services import department_quota_set
from chat.models import Message
from core.models import AuditEntry

from .helpers import ask, sse_events

QUESTION = "Who approves loan applications above one million yuan?"


def test_chat_page_refuses_over_the_per_minute_limit_with_a_translated_time(kb_corpus, people, company_assistant, settings):
    settings.CHAT_USER_REQUESTS_PER_MINUTE = 1
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(people["credit_employee"])
    first = ask(client, company_assistant, QUESTION)
    assert first[-1][0] == "done"
    response = client.post("/chat/ask/", {"assistant": company_assistant.pk, "question": QUESTION})
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60
    (kind, data), = sse_events(response)
    assert kind == "error" and "每分钟" in data["message"] and "秒后" in data["message"]
    assert Message.objects.filter(role="assistant").count() == 1
    # Another user has their own allowance.
    other = Client()
    other.force_login(people["credit_manager"])
    assert ask(other, company_assistant, QUESTION)[-1][0] == "done"


def test_chat_page_refuses_when_the_department_quota_is_used(kb_corpus, people, company_assistant, settings):
    settings.CHAT_DEPARTMENT_DAILY_TOKENS = 500
    usage_record(user=people["credit_manager"], prompt_tokens=400, completion_tokens=100)
    client = Client()
    client.force_login(people["credit_employee"])
    response = client.post("/chat/ask/", {"assistant": company_assistant.pk, "question": QUESTION})
    assert response.status_code == 429
    ((kind, data),) = sse_events(response)
    assert kind == "error" and "daily quota of 500 tokens" in data["message"] and "at 00:00" in data["message"]
    assert not Message.objects.exists()
    # HR is another department: not refused.
    hr = Client()
    hr.force_login(people["hr_employee"])
    assert ask(hr, company_assistant, QUESTION)[-1][0] == "done"


def test_an_answer_on_the_page_is_charged_to_the_users_department(kb_corpus, people, company_assistant, credit):
    client = Client()
    client.force_login(people["credit_employee"])
    ask(client, company_assistant, QUESTION)
    row = UsageDay.objects.get()
    assert (row.user, row.department, row.requests) == (people["credit_employee"], credit, 1)
    assert row.latency_ms > 0
    # The extractive default has no model, but its answers still count against the quota.
    message = Message.objects.get(role="assistant")
    assert row.prompt_tokens >= len(QUESTION.split()) and row.completion_tokens >= len(message.content.split()) // 2
    assert row.prompt_tokens == message.usage["prompt_tokens"] and row.completion_tokens == message.usage["completion_tokens"]


def test_department_override_beats_the_default_and_is_audited(people, credit, settings):
    settings.CHAT_USER_REQUESTS_PER_MINUTE = 100
    department_quota_set(actor=people["superuser"], department=credit, daily_tokens=0, user_requests_per_minute=2)
    assert AuditEntry.objects.filter(action="edit", details__user_requests_per_minute=2).exists()
    user = people["credit_employee"]
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    chat_request_admit(user=user, now=now)
    chat_request_admit(user=user, now=now)
    with pytest.raises(RateLimited) as info:
        chat_request_admit(user=user, now=now)
    assert info.value.retry_after == 50  # the minute ends at 12:01:00
    # daily_tokens=0 means unlimited, whatever was used.
    usage_record(user=user, prompt_tokens=10**9, completion_tokens=0, now=now)
    chat_request_admit(user=user, now=now + timedelta(minutes=1))
    # Only company admins set quotas.
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        department_quota_set(actor=people["credit_admin"], department=credit, daily_tokens=1, user_requests_per_minute=1)
    assert DepartmentQuota.objects.get(department=credit).daily_tokens == 0


def test_counters_are_per_window_and_pruned(db):
    t = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
    assert counter_hit("k", window_seconds=60, now=t) == (1, t + timedelta(minutes=1))
    assert counter_hit("k", window_seconds=60, now=t + timedelta(seconds=59))[0] == 2
    assert counter_hit("k", window_seconds=60, now=t + timedelta(seconds=60))[0] == 1
    assert counters_prune(now=t + timedelta(hours=3)) == 2
    assert not RateLimitCounter.objects.exists()


def test_usage_of_a_user_without_department_is_kept_apart(people):
    outsider = people["outsider"]
    usage_record(user=outsider, prompt_tokens=5, completion_tokens=6)
    usage_record(user=outsider, prompt_tokens=1, completion_tokens=1)
    row = UsageDay.objects.get(user=outsider)
    assert row.department is None and (row.requests, row.total_tokens) == (2, 13)
    chat_request_admit(user=outsider)  # no department: no quota


def test_a_user_in_no_department_has_a_daily_quota_of_their_own(kb_corpus, people, company_assistant, settings):
    """Before, a user in no department (a company admin without one, someone whose roles were all
    removed) chatted without any token limit: there was no department to charge."""
    settings.CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS = 500
    outsider, admin = people["outsider"], people["superuser"]
    usage_record(user=outsider, prompt_tokens=400, completion_tokens=100)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(outsider)
    response = client.post("/chat/ask/", {"assistant": company_assistant.pk, "question": QUESTION})
    assert response.status_code == 429
    ((kind, data),) = sse_events(response)
    assert kind == "error" and "500" in data["message"] and "配额" in data["message"]
    from django.utils import translation

    with pytest.raises(RateLimited) as info:
        chat_request_admit(user=outsider)
    with translation.override("en"):
        assert info.value.reason == "user_quota" and "You have used your daily quota of 500 tokens" in info.value.message
    # each user has their own: the admin (no department either) is not refused, nor is a department member
    assert chat_request_admit(user=admin).daily_tokens == 500
    assert chat_request_admit(user=people["credit_employee"]).department_id is not None
    # 0 is unlimited
    settings.CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS = 0
    assert chat_request_admit(user=outsider).daily_tokens == 0
