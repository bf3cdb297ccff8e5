"""Issue 12: lists that grow without bound are paginated (knowledge bases, a document's versions,
the review inbox, the chunk viewer; the versions API), and a page counts only what the user may see."""

import re

import pytest
from django.urls import reverse

from knowledge import services
from knowledge.models import Chunk
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr("knowledge.views.LIST_PAGE_SIZE", 2)
    monkeypatch.setattr("knowledge.ingestion.views.CHUNKS_PER_PAGE", 2)


def _count(page: str) -> str:
    return re.search(r"Page (\d+) of (\d+) \((\d+) entries\)", page).groups()


def test_knowledge_base_list_pages_count_only_readable_ones(small_pages, people, credit, hr):
    for name in ("A", "B", "C"):
        KnowledgeBaseFactory(department=credit, name=f"Credit {name}")
    KnowledgeBaseFactory(department=hr, name="HR only")
    client = login(people["credit_employee"])
    first = client.get(reverse("knowledge:index")).content.decode()
    assert _count(first) == ("1", "2", "3") and "Credit A" in first and "Credit C" not in first
    second = client.get(reverse("knowledge:index"), {"page": 2}).content.decode()
    assert "Credit C" in second and "HR only" not in second


def test_history_and_the_versions_api_are_paginated(small_pages, people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    manager = people["credit_manager"]
    doc = document(kb, manager, content="v1")
    for number in (1, 2):
        services.document_version_create(actor=manager, document=doc, content=f"v{number + 1}", base_version_number=number)
    client = login(manager)
    first = client.get(reverse("knowledge:history", args=[doc.pk])).content.decode()
    assert re.findall(r'data-version="(\d+)"', first) == ["3", "2"] and _count(first) == ("1", "2", "3")
    second = client.get(reverse("knowledge:history", args=[doc.pk]), {"page": 2}).content.decode()
    assert re.findall(r'data-version="(\d+)"', second) == ["1"]
    api = client.get(f"/api/documents/{doc.pk}/versions/", {"limit": 2}).json()
    assert api["count"] == 3 and [v["number"] for v in api["results"]] == [3, 2] and api["next"]


def test_review_inbox_is_paginated(small_pages, people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    for title in ("One", "Two", "Three"):
        services.document_submit(actor=people["credit_manager"], document=document(kb, people["credit_manager"], title=title))
    page = login(people["credit_reviewer"]).get(reverse("knowledge:review_inbox")).content.decode()
    assert len(re.findall(r'<tr data-review="\d+">', page)) == 2 and _count(page) == ("1", "2", "3")


def test_chunk_viewer_is_paginated(small_pages, people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    doc = document(kb, people["credit_manager"])
    version = doc.latest_version
    for index in range(5):
        Chunk.objects.create(version=version, document=doc, knowledge_base=kb, index=index, text=f"chunk {index}", token_count=2)
    client = login(people["credit_manager"])
    url = reverse("ingest:chunks", args=[version.pk])
    page = client.get(url).content.decode()
    assert re.findall(r'data-index="(\d+)"', page) == ["0", "1"] and _count(page) == ("1", "3", "5")
    last = client.get(url, {"page": 3}).content.decode()
    assert re.findall(r'data-index="(\d+)"', last) == ["4"]
    # a reader may not open a draft's chunks at all
    assert login(people["credit_employee"]).get(url).status_code == 404
