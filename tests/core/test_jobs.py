import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.audit import AuditAction, audit_log
from core.jobs import JobFailed, register
from core.models import AuditEntry, Job, JobStatus
from core.services import job_create, job_execute, work_reap


@register("test_boom")
def _boom(job):
    raise RuntimeError("the model directory is missing")


def test_a_failing_job_records_the_error_and_never_stays_running(people):
    job = job_create(actor=people["superuser"], kind="test_boom")
    job = job_execute(job_id=job.pk)
    assert job.status == JobStatus.FAILED
    assert "the model directory is missing" in job.error
    assert job.finished_at is not None


@register("test_refused")
def _refused(job):
    raise JobFailed("The teacher model failed: 401 Unauthorized.")


def test_a_job_failing_with_a_message_for_the_user_records_that_message_alone(people):
    boom = job_execute(job_id=job_create(actor=people["superuser"], kind="test_boom").pk)
    assert "Traceback" in boom.error and boom.error.startswith("RuntimeError: ")  # a bug keeps its traceback
    refused = job_execute(job_id=job_create(actor=people["superuser"], kind="test_refused").pk)
    assert refused.status == JobStatus.FAILED and refused.finished_at is not None
    assert refused.error == "The teacher model failed: 401 Unauthorized."


def test_job_runs_in_process_and_reports_pgvector(people):
    job = job_create(actor=people["superuser"], kind="system_check", params={"echo": 1})
    job = job_execute(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["pgvector"]
    # Running a finished job again does nothing (a redelivered message).
    assert job_execute(job_id=job.pk).attempts == 1


def test_only_admins_may_start_jobs(people):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        job_create(actor=people["credit_manager"], kind="system_check")
    assert not Job.objects.exists()


def test_reaper_fails_jobs_whose_worker_died(people):
    job = Job.objects.create(kind="system_check", queue="default", status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    fresh = Job.objects.create(kind="system_check", queue="default", status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    assert work_reap(kinds=["job"])["job"]["failed"] == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == JobStatus.FAILED and "retried" in job.error
    assert fresh.status == JobStatus.RUNNING


def test_audit_rows_are_append_only_in_the_database(people, credit):
    entry = audit_log(actor=people["superuser"], action=AuditAction.EDIT, obj=credit, department=credit, ip="10.0.0.1")
    for sql in (
        "UPDATE core_auditentry SET action = 'forged' WHERE id = %s",
        "DELETE FROM core_auditentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert entry.action == AuditAction.EDIT
    assert entry.actor_username == "root" and entry.ip == "10.0.0.1"


def test_one_reaper_fails_every_kind_of_work_whose_worker_died(people, credit):
    """Hit-test runs and source syncs have heartbeats too: a dead worker's row does not stay
    running forever; a live worker's row is left alone."""
    from knowledge.models import IngestionStatus, VersionIngestion
    from retrieval.models import HitTestRun, HitTestSet
    from sources.models import Source, SourceSync
    from tests.factories import KnowledgeBaseFactory, document

    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit)
    old = timezone.now() - dt.timedelta(hours=1)
    test_set = HitTestSet.objects.create(knowledge_base=kb, name="smoke", created_by=manager)
    dead_run = HitTestRun.objects.create(test_set=test_set, started_by=manager, status="running", heartbeat_at=old)
    live_run = HitTestRun.objects.create(
        test_set=test_set, started_by=manager, status="running", heartbeat_at=timezone.now()
    )
    source = Source.objects.create(knowledge_base=kb, kind="sql", name="crm", created_by=manager)
    dead_sync = SourceSync.objects.create(source=source, status="running", heartbeat_at=old)
    version = document(kb, manager, content="Text.").latest_version
    VersionIngestion.objects.filter(version=version).update(status=IngestionStatus.EMBEDDING, heartbeat_at=old)

    report = work_reap()

    failed = {name: report[name]["failed"] for name in ("job", "ingestion", "source_sync", "hit_test_run")}
    assert failed == {"job": 0, "ingestion": 1, "source_sync": 1, "hit_test_run": 1}
    dead_run.refresh_from_db()
    assert dead_run.status == "failed" and "did not finish" in dead_run.error_message
    assert dead_run.finished_at is not None
    live_run.refresh_from_db()
    assert live_run.status == "running"
    dead_sync.refresh_from_db()
    assert dead_sync.status == "failed" and "did not finish" in dead_sync.error
    assert VersionIngestion.objects.get(version=version).error_code == "worker_lost"


def test_the_reaper_sends_rows_never_sent_and_a_redelivered_message_runs_a_job_once(people):
    from tests.core.test_worker_integration import broker

    with broker("memory://", {}):
        job = Job.objects.create(kind="system_check", queue="default")  # queued, never sent
        assert work_reap(kinds=["job"])["job"]["dispatched"] == 0  # too fresh: its commit may still send it
        later = timezone.now() + dt.timedelta(minutes=1)
        assert work_reap(now=later, kinds=["job"])["job"] == {"failed": 0, "dispatched": 1}
        job.refresh_from_db()
        assert job.dispatched_at is not None
        assert work_reap(now=later, kinds=["job"])["job"]["dispatched"] == 0  # sent once
    assert job_execute(job_id=str(job.pk)).status == JobStatus.SUCCEEDED  # as the task receives it
    assert job_execute(job_id=str(job.pk)).attempts == 1
