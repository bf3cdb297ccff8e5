import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.audit import AuditAction, audit_log
from core.jobs import register
from core.models import AuditEntry, Job, JobStatus
from core.services import job_create, job_execute, job_reap_stale


@register("test_boom")
def _boom(job):
    raise RuntimeError("the model directory is missing")


def test_a_failing_job_records_the_error_and_never_stays_running(people):
    job = job_create(actor=people["superuser"], kind="test_boom")
    job = job_execute(job_id=job.pk)
    assert job.status == JobStatus.FAILED
    assert "the model directory is missing" in job.error
    assert job.finished_at is not None


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
    assert job_reap_stale(older_than=dt.timedelta(minutes=15)) == 1
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
