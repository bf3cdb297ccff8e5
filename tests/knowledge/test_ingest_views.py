"""The ingestion pages: status partial (htmx polling), retry, chunk viewer, upload, embedding."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge.ingestion import services as ingest_services
from knowledge.models import Document, IngestionStatus, VersionIngestion
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document, ingest


TEXT = "# Policy\n\n## Approvals\n\nEvery loan needs two approvals since 2024-03-01, at a rate of 3.5%.\n"


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


def test_status_partial_polls_until_finished_then_shows_chunks_and_timings(kb, people):
    doc = document(kb, people["credit_manager"], content=TEXT)
    version = doc.latest_version
    ingest_services.version_ingest_enqueue(version=version)
    client = login(people["credit_manager"])
    url = reverse("ingest:status", args=[version.pk])
    queued = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in queued and 'data-status="queued"' in queued
    ingest(version.pk)
    page = client.get(url).content.decode()
    assert 'data-status="indexed"' in page and "hx-trigger" not in page
    assert 'data-chunk-count="1"' in page
    for stage in ("extract", "chunk", "embed", "index"):
        assert f'data-stage="{stage}"' in page
    assert reverse("ingest:chunks", args=[version.pk]) in page


def test_hidden_versions_answer_404(kb, people):
    doc = document(kb, people["credit_manager"], content=TEXT)  # a draft: readers do not see it
    version = doc.latest_version
    for name in ("ingest:status", "ingest:chunks"):
        url = reverse(name, args=[version.pk])
        assert login(people["hr_employee"]).get(url).status_code == 404
        assert login(people["credit_employee"]).get(url).status_code == 404
    assert login(people["credit_employee"]).post(reverse("ingest:retry", args=[version.pk])).status_code == 404


def test_failed_version_shows_the_error_and_a_retry_button(kb, people):
    manager = people["credit_manager"]
    doc = document(kb, manager, content="   ")
    version = doc.latest_version
    ingest(version.pk)
    client = login(manager)
    page = client.get(reverse("ingest:status", args=[version.pk])).content.decode()
    assert 'data-error-code="empty"' in page and 'data-action="retry-ingestion"' in page
    response = client.post(reverse("ingest:retry", args=[version.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-status="queued"' in response.content.decode()
    assert VersionIngestion.objects.get(version=version).status == IngestionStatus.QUEUED


def test_chunk_viewer_lists_chunks_with_tokens_headings_and_entities(kb, people):
    doc = document(kb, people["credit_manager"], content=TEXT)
    ingest(doc.latest_version.pk)
    page = login(people["credit_manager"]).get(reverse("ingest:chunks", args=[doc.latest_version.pk])).content.decode()
    assert "two approvals" in page
    assert "Policy › Approvals" in page
    assert "tokens" in page and 'data-index="0"' in page
    assert "entity-percentage" in page and "entity-date" in page


def test_chunk_viewer_is_translated(kb, people):
    doc = document(kb, people["credit_manager"], content=TEXT)
    ingest(doc.latest_version.pk)
    client = login(people["credit_manager"])
    page = client.get(reverse("ingest:chunks", args=[doc.latest_version.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 200


def test_upload_page_creates_documents_and_shows_their_status(kb, people):
    client = login(people["credit_manager"])
    url = reverse("ingest:upload", args=[kb.pk])
    assert client.get(url).status_code == 200
    files = [SimpleUploadedFile("a.md", b"# A\n\nAlpha."), SimpleUploadedFile("b.txt", "乙。".encode("gbk"))]
    response = client.post(url, {"files": files})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-outcome="created"') == 2
    assert "ingest-status-" in page
    assert set(Document.objects.filter(knowledge_base=kb).values_list("title", flat=True)) == {"a", "b"}
    again = client.post(url, {"files": [SimpleUploadedFile("a.md", b"# A\n\nAlpha.")]}).content.decode()
    assert 'data-outcome="unchanged"' in again


def test_upload_page_refuses_readers_and_oversize_files(kb, people, settings):
    url = reverse("ingest:upload", args=[kb.pk])
    assert login(people["credit_employee"]).get(url).status_code == 403
    assert login(people["hr_employee"]).get(url).status_code == 404
    settings.UPLOAD_MAX_BYTES = 10
    page = login(people["credit_manager"]).post(url, {"files": [SimpleUploadedFile("a.md", b"# A\n\nAlpha.")]})
    assert 'data-outcome="refused"' in page.content.decode()
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_embedding_page_is_for_company_admins(people):
    url = reverse("ingest:embedding")
    assert login(people["credit_manager"]).get(url).status_code == 403
    page = login(people["superuser"]).get(url)
    assert page.status_code == 200 and 'id="embedding-spaces"' in page.content.decode()
