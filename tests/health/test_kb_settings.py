"""A knowledge base's editors set after how many days of failing syncs its source documents are
stale; the value is validated (knowledge/kb_settings.py), audited, and decides staleness."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import AuditEntry
from health.models import KnowledgeBaseHealth, StaleReason
from health.services import knowledge_base_health_update, stale_documents
from sources.models import Source, SourceRecord, SourceSync, SyncStatus
from tests.factories import KnowledgeBaseFactory, published_document


@pytest.fixture
def synced(people, credit):
    kb = KnowledgeBaseFactory(department=credit, review_required=False, name="Rates")
    doc = published_document(kb, people["credit_manager"], None, content="rates", title="Rates from the warehouse")
    source = Source.objects.create(knowledge_base=kb, kind="http", name="Rates API", created_by=people["credit_manager"])
    SourceRecord.objects.create(source=source, external_key="1", document=doc, content_sha256="x")
    SourceSync.objects.create(source=source, status=SyncStatus.FAILED, queued_at=timezone.now() - dt.timedelta(days=4))
    return kb, doc


def test_a_manager_sets_the_days_on_the_page_and_it_decides_staleness(synced, people, client_for):
    kb, doc = synced
    assert stale_documents()[doc.pk] == [StaleReason.SOURCE_FAILING]  # default: 3 days
    client = client_for(people["credit_manager"])
    assert f'href="/health/knowledge-bases/{kb.pk}/settings/"' in client.get(f"/knowledge/bases/{kb.pk}/").content.decode()
    page = client.get(f"/health/knowledge-bases/{kb.pk}/settings/").content.decode()
    assert 'name="source_failure_days"' in page and 'value="3"' in page

    response = client.post(f"/health/knowledge-bases/{kb.pk}/settings/", {"source_failure_days": "5"})
    assert response.status_code == 302
    assert KnowledgeBaseHealth.objects.get(knowledge_base=kb).source_failure_days == 5
    assert doc.pk not in stale_documents()
    entry = AuditEntry.objects.get(action="health_settings_change")
    assert entry.object_id == str(kb.pk) and entry.actor == people["credit_manager"]
    assert 'value="5"' in client.get(f"/health/knowledge-bases/{kb.pk}/settings/").content.decode()

    for bad in ("0", "366", "three", "9" * 10_000, "1e3", ""):
        response = client.post(f"/health/knowledge-bases/{kb.pk}/settings/", {"source_failure_days": bad})
        assert response.status_code == 400 and 'class="errors"' in response.content.decode()
    assert KnowledgeBaseHealth.objects.get(knowledge_base=kb).source_failure_days == 5


def test_only_the_knowledge_base_editors_may_change_it(synced, people, client_for):
    kb, _doc = synced
    for name in ("hr_manager", "credit_employee", "credit_reviewer"):
        client = client_for(people[name])
        assert client.get(f"/health/knowledge-bases/{kb.pk}/settings/").status_code == 404
        assert client.post(f"/health/knowledge-bases/{kb.pk}/settings/", {"source_failure_days": "9"}).status_code == 404
    assert "health-settings" not in client_for(people["credit_employee"]).get(f"/knowledge/bases/{kb.pk}/").content.decode()
    assert not KnowledgeBaseHealth.objects.exists()


def test_the_rule_in_kb_settings_holds_for_every_caller(synced, people):
    kb, _doc = synced
    for bad in (0, 366, "5", 2.5, True, None):
        with pytest.raises(ValidationError):
            knowledge_base_health_update(actor=people["credit_manager"], knowledge_base=kb, source_failure_days=bad)
    assert not KnowledgeBaseHealth.objects.exists()


def test_the_api_reads_and_sets_it_for_the_editors_only(synced, people, client_for):
    kb, doc = synced
    url = f"/api/health/knowledge-bases/{kb.pk}/settings/"
    client = client_for(people["credit_manager"])
    assert client.get(url).json() == {"knowledge_base": kb.pk, "source_failure_days": 3}
    response = client.put(url, {"source_failure_days": 5}, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"knowledge_base": kb.pk, "source_failure_days": 5}
    assert KnowledgeBaseHealth.objects.get(knowledge_base=kb).source_failure_days == 5
    assert doc.pk not in stale_documents()
    assert AuditEntry.objects.get(action="health_settings_change").actor == people["credit_manager"]
    assert client.patch(url, {"source_failure_days": 2}, content_type="application/json").json()["source_failure_days"] == 2

    # Bad input: a clear 400, nothing written, nothing audited.
    for bad in (0, 366, "5", 2.5, True, None, [], {}, 10**30, "9" * 10_000):
        response = client.put(url, {"source_failure_days": bad}, content_type="application/json")
        assert response.status_code == 400, bad
        assert "source_failure_days" in response.json()
    for body in ({}, {"days": 4}, [4], "4"):
        assert client.put(url, body, content_type="application/json").status_code == 400
    assert client.put(url, "{not json", content_type="application/json").status_code == 400
    assert KnowledgeBaseHealth.objects.get(knowledge_base=kb).source_failure_days == 2
    assert AuditEntry.objects.filter(action="health_settings_change").count() == 2

    # Not an editor of it: as if it did not exist; not signed in: refused.
    for name in ("hr_manager", "credit_employee", "credit_reviewer"):
        other = client_for(people[name])
        assert other.get(url).status_code == 404
        assert other.put(url, {"source_failure_days": 9}, content_type="application/json").status_code == 404
    from django.test import Client

    assert Client().get(url).status_code in (401, 403)
    assert client.get("/api/health/knowledge-bases/999999/settings/").status_code == 404
    assert KnowledgeBaseHealth.objects.get(knowledge_base=kb).source_failure_days == 2
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/health/knowledge-bases/{id}/settings/" in schema
