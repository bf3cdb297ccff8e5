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
