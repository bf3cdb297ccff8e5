"""Stale documents: found daily, notified once per period, cleared by "reviewed" for a period."""

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Membership
from core.models import AuditEntry
from health.notifications import EPOCH
from health.models import Notification, NotificationKind, StaleReason
from health.services import document_mark_reviewed, stale_documents, stale_scan
from health.tasks import stale_scan as stale_scan_task
from tests.factories import KnowledgeBaseFactory, published_document


@pytest.fixture
def docs(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, review_required=False)
    hr_kb = KnowledgeBaseFactory(department=hr, review_required=False)
    manager = people["credit_manager"]
    manager.email = "credit.manager@example.com"
    manager.save()
    overdue = published_document(credit_kb, manager, None, content="overdue", title="Overdue policy")
    overdue.review_by = timezone.localdate() - dt.timedelta(days=60)
    overdue.save()
    fresh = published_document(credit_kb, manager, None, content="fresh", title="Fresh policy")
    fresh.review_by = timezone.localdate() + dt.timedelta(days=100)
    fresh.save()
    orphan = published_document(hr_kb, people["hr_manager"], None, content="orphan", title="HR orphan")
    return {"overdue": overdue, "fresh": fresh, "orphan": orphan}


def test_stale_reasons(docs, people):
    Membership.objects.filter(user=people["hr_manager"]).delete()  # the owner left HR
    stale = stale_documents()
    assert stale == {docs["overdue"].pk: [StaleReason.REVIEW_BY], docs["orphan"].pk: [StaleReason.OWNER_GONE]}


def test_a_stale_document_notifies_its_managers_exactly_once_per_period(docs, people, django_capture_on_commit_callbacks):
    today = timezone.localdate()
    start = today - dt.timedelta(days=(today - EPOCH).days % 30)  # the first day of this period
    with django_capture_on_commit_callbacks(execute=True):
        first = stale_scan(today=start)
        stale_scan(today=start + dt.timedelta(days=1))
        stale_scan(today=start + dt.timedelta(days=29))
        stale_scan_task()  # what beat runs, today
    assert first == {"stale": 1, "notifications": 2}  # the Credit manager and the Credit admin
    rows = Notification.objects.filter(kind=NotificationKind.STALE)
    assert rows.filter(user=people["credit_manager"]).count() == 1
    assert not rows.filter(user__in=[people["hr_manager"], people["credit_employee"], people["credit_reviewer"]]).exists()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["credit.manager@example.com", people["credit_admin"].email])
    assert all("Overdue policy" in m.subject for m in mail.outbox)
    # the next period notifies again
    stale_scan(today=start + dt.timedelta(days=30))
    assert rows.filter(user=people["credit_manager"]).count() == 2


def test_a_user_may_turn_a_kind_off(docs, people, client_for):
    client = client_for(people["credit_manager"])
    client.post("/health/notifications/", {"kind": [NotificationKind.CONFLICT]})
    stale_scan()
    assert not Notification.objects.filter(user=people["credit_manager"]).exists()
    assert Notification.objects.filter(user=people["credit_admin"]).count() == 1


def test_marking_reviewed_clears_it_until_the_next_period_and_is_audited(docs, people, client_for):
    doc = docs["overdue"]
    with pytest.raises(ValidationError):
        document_mark_reviewed(actor=people["credit_manager"], document=doc, note=" ")
    client = client_for(people["credit_manager"])
    assert "Overdue policy" in client.get("/health/stale/").content.decode()
    client.post(f"/health/stale/{doc.pk}/reviewed/", {"note": "Rates checked with treasury"})
    assert doc.pk not in stale_documents()
    assert "Overdue policy" not in client.get("/health/stale/").content.decode()
    assert doc.pk in stale_documents(today=timezone.localdate() + dt.timedelta(days=31))
    assert AuditEntry.objects.filter(action="health_mark_reviewed", details__note="Rates checked with treasury").exists()
    # someone who may not edit it cannot mark it
    assert client_for(people["hr_manager"]).post(f"/health/stale/{doc.pk}/reviewed/", {"note": "x"}).status_code == 404


def test_the_bell_counts_unread_notifications(docs, people, client_for):
    stale_scan()
    client = client_for(people["credit_manager"])
    assert "<b data-unread>1</b>" in client.get("/health/").content.decode()
    client.post("/health/notifications/", {"action": "read"})
    assert "data-unread>" not in client.get("/health/").content.decode()
    hr_page = client_for(people["hr_manager"]).get("/health/stale/").content.decode()
    assert "Overdue policy" not in hr_page
