"""Issue 12: chunk_settings and retrieval_settings are validated by the services: a bad value is a
400 naming the field (a form error on the page), never a later crash in ingestion or search."""

import pytest
from django.urls import reverse

from knowledge.kb_settings import RETRIEVAL_SETTINGS
from knowledge.models import KnowledgeBase
from retrieval.search import DEFAULT_SETTINGS
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory


def _post(client, url, data):
    return client.post(url, data, content_type="application/json")


def _patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


@pytest.mark.parametrize(
    "chunk_settings",
    [
        {"chunk_tokens": 100000},  # far beyond the embedding model's window
        {"chunk_tokens": 257},  # MiniLM's window is 256 tokens
        {"chunk_tokens": "256"},
        {"chunk_tokens": 0},
        {"chunk_tokens": 64, "overlap_tokens": 64},
        {"chunk_tokens": 64, "overlap_tokens": -1},
        {"chunk_size": 64},
        [256, 32],
    ],
)
def test_bad_chunk_settings_answer_400_naming_the_field(people, credit, chunk_settings):
    client = login(people["credit_manager"])
    created = _post(client, "/api/knowledge-bases/", {"name": "x", "department": credit.pk, "chunk_settings": chunk_settings})
    assert created.status_code == 400 and "chunk_settings" in created.json(), created.json()
    assert not KnowledgeBase.objects.filter(name="x").exists()
    kb = KnowledgeBaseFactory(department=credit)
    patched = _patch(client, f"/api/knowledge-bases/{kb.pk}/", {"chunk_settings": chunk_settings})
    assert patched.status_code == 400 and "chunk_settings" in patched.json()
    kb.refresh_from_db()
    assert kb.chunk_settings == {"chunk_tokens": 256, "overlap_tokens": 32}


@pytest.mark.parametrize(
    "retrieval_settings",
    [
        {"candidates": "many"},
        {"candidates": 0},
        {"fusion": "best"},
        {"weights": {"bm25": 1, "sparse": 1}},
        {"weights": 2},
        {"k1": True},
        {"b": 2},
        {"no_answer_thresholds": {"en": 0.5}},
        {"bm25_bound_unknown": "yes"},
        {"bm25_bound_unknown": 1},
        {"top_k": 5},
        "hybrid",
    ],
)
def test_bad_retrieval_settings_answer_400_naming_the_field(people, credit, retrieval_settings):
    client = login(people["credit_manager"])
    kb = KnowledgeBaseFactory(department=credit)
    patched = _patch(client, f"/api/knowledge-bases/{kb.pk}/", {"retrieval_settings": retrieval_settings})
    assert patched.status_code == 400 and "retrieval_settings" in patched.json(), patched.json()
    kb.refresh_from_db()
    assert kb.retrieval_settings == {}


def test_good_settings_are_saved(people, credit):
    client = login(people["credit_manager"])
    kb = KnowledgeBaseFactory(department=credit)
    good = {
        "retrieval_settings": {"fusion": "rrf", "weights": {"bm25": 1, "dense": 0}, "no_answer_thresholds": {"en-zh": 0.7},
                               "bm25_bound_unknown": False},
        "chunk_settings": {"chunk_tokens": 256, "overlap_tokens": 0},
    }
    assert _patch(client, f"/api/knowledge-bases/{kb.pk}/", good).status_code == 200
    kb.refresh_from_db()
    assert kb.retrieval_settings["fusion"] == "rrf" and kb.chunk_settings["overlap_tokens"] == 0
    assert kb.retrieval_settings["bm25_bound_unknown"] is False


def test_the_page_shows_a_form_error_for_bad_settings(people, credit):
    client = login(people["credit_manager"])
    response = client.post(
        reverse("knowledge:knowledge_base_create"),
        {"name": "Rules", "department": credit.pk, "chunk_settings": '{"chunk_tokens": 9999}'},
    )
    assert response.status_code == 400
    assert "chunk_tokens must be an integer from 16 to 256" in response.content.decode()
    assert not KnowledgeBase.objects.filter(name="Rules").exists()


def test_every_retrieval_setting_has_a_check():
    assert set(RETRIEVAL_SETTINGS) == set(DEFAULT_SETTINGS)
