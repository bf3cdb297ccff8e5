"""Scheduled syncs: beat runs sources.tasks.sync_due_sources, which queues due sources once."""

import datetime

import pytest
from django.utils import timezone

from sources.models import Source, SourceKind, SourceSync, SyncStatus, SyncTrigger
from sources.services import source_create, sources_queue_due
from sources.tasks import source_sync_task, sync_due_sources
from tests.conftest import login


def scheduled(kb, manager, rows, name="Nightly", **overrides):
    fields = dict(name=name, dsn=rows.source_dsn, query=f"SELECT * FROM {rows.table}", key_field="id",
                  title_template="{title}", body_template="{body}", schedule_minutes=60)
    fields.update(overrides)
    return source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, **fields)


def test_due_sources_are_queued_once_and_rescheduled(kb, manager, rows, django_capture_on_commit_callbacks):
    due = scheduled(kb, manager, rows)
    scheduled(kb, manager, rows, name="Later")
    scheduled(kb, manager, rows, name="Off", schedule_minutes=None)
    scheduled(kb, manager, rows, name="Disabled", enabled=False)
    Source.objects.filter(pk=due.pk).update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))

    with django_capture_on_commit_callbacks() as callbacks:
        assert sync_due_sources() == 1
    assert len(callbacks) == 1
    sync = SourceSync.objects.get()
    assert (sync.source_id, sync.trigger, sync.status) == (due.pk, SyncTrigger.SCHEDULE, SyncStatus.QUEUED)
    due.refresh_from_db()
    assert due.next_sync_at > timezone.now() + datetime.timedelta(minutes=59)

    # Still pending: even when due again, it is not queued twice.
    Source.objects.filter(pk=due.pk).update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))
    assert sources_queue_due() == []

    # The Celery task (run in this process) does the sync; a redelivery does nothing more.
    source_sync_task.apply(args=[sync.pk]).get()
    sync.refresh_from_db()
    assert (sync.status, sync.created) == (SyncStatus.SUCCEEDED, 3)
    source_sync_task.apply(args=[sync.pk]).get()
    sync.refresh_from_db()
    assert sync.created == 3


def test_anonymous_is_sent_to_login(client, db):
    for url in ("/sources/knowledge-bases/1/", "/sources/1/", "/sources/allowed-hosts/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/api/sources/").status_code in (401, 403)


def test_every_sync_outcome_is_on_the_compliance_trail_scheduled_ones_too(kb, manager, rows, people, client_for):
    due = scheduled(kb, manager, rows)
    Source.objects.filter(pk=due.pk).update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))
    assert sync_due_sources() == 1
    sync = SourceSync.objects.get()
    source_sync_task.apply(args=[sync.pk]).get()
    broken = scheduled(kb, manager, rows, name="Broken", query="SELECT * FROM no_such_table")
    Source.objects.filter(pk=broken.pk).update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))
    assert sync_due_sources() == 1
    source_sync_task.apply(args=[SourceSync.objects.get(source=broken).pk]).get()

    from core.models import AuditEntry

    rows_ = {e.object_id: e for e in AuditEntry.objects.filter(action="source_sync_finished")}
    ok, failed = rows_[str(due.pk)], rows_[str(broken.pk)]
    assert (ok.actor_username, ok.details["status"], ok.details["created"]) == ("system", "succeeded", 3)
    assert ok.details["trigger"] == "schedule" and ok.department_id == kb.department_id
    assert failed.details["status"] == "failed" and "no_such_table" in failed.details["error"]

    page = client_for(people["credit_reviewer"]).get("/knowledge/compliance/", {"action": "source_sync_finished"})
    assert page.status_code == 200
    assert page.content.decode().count("Source sync finished") >= 2
    hidden = client_for(people["hr_manager"]).get("/knowledge/compliance/", {"action": "source_sync_finished"})
    assert "Nightly" not in hidden.content.decode()
