import pytest
from django.urls import reverse

from retrieval.models import HitTestRun, HitTestSet
from retrieval.search import search
from retrieval.services import hit_test_run_execute
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory

from .helpers import published

pytestmark = pytest.mark.django_db


@pytest.fixture
def loans(people, credit, hr):
    kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    doc, _ = published(kb, people["credit_manager"], "Loan approval",
                       ["Loan applications above one million need approval by the credit committee."])
    published(kb, people["credit_manager"], "Cards", ["Credit card limits are reviewed every year."])
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR")
    published(hr_kb, people["hr_manager"], "Leave", ["Twenty days of annual leave."])
    return kb, doc, hr_kb


def test_hit_test_page_shows_ranked_chunks_with_retriever_scores(loans, people):
    kb, doc, hr_kb = loans
    client = login(people["credit_manager"])
    response = client.get(reverse("retrieval:hit_test"), {"knowledge_base": kb.pk, "query": "credit committee",
                                                          "mode": "hybrid"})
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("knowledge:version", args=[doc.pk, 1]) in body
    assert "Loan approval" in body
    # Another department's knowledge base is not a choice.
    assert client.get(reverse("retrieval:hit_test"), {"knowledge_base": hr_kb.pk, "query": "leave"}).status_code == 200
    assert "Leave" not in client.get(reverse("retrieval:hit_test"), {"knowledge_base": hr_kb.pk,
                                                                     "query": "leave"}).content.decode()


def test_test_set_queries_runs_and_history(loans, people, django_capture_on_commit_callbacks, monkeypatch):
    kb, doc, _ = loans
    client = login(people["credit_manager"])
    response = client.post(reverse("retrieval:test_set_create", args=[kb.pk]), {"name": "Smoke"})
    test_set = HitTestSet.objects.get()
    assert response.url == reverse("retrieval:test_set", args=[test_set.pk])
    client.post(reverse("retrieval:test_set", args=[test_set.pk]),
                {"query": "who approves large loans", "expected_documents": [doc.pk]})
    assert test_set.queries.get().expected_documents.get() == doc
    queued = []
    monkeypatch.setattr(
        "config.celery.app.send_task", lambda name, args, queue, **options: queued.append((name, args[0], queue))
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("retrieval:test_set_run", args=[test_set.pk]))
    run = HitTestRun.objects.get()
    assert queued == [("retrieval.tasks.hit_test_run_execute_task", run.pk, "default")]
    assert run.status == "queued" and run.dispatched_at is not None
    hit_test_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert set(run.metrics) >= {"bm25", "dense", "hybrid"}
    assert run.metrics["hybrid"]["recall@10"] == 1.0
    page = client.get(reverse("retrieval:test_set", args=[test_set.pk]))
    assert page.status_code == 200 and "chart.umd.min.js" in page.content.decode()
    assert login(people["hr_manager"]).get(reverse("retrieval:test_set", args=[test_set.pk])).status_code == 404


def test_search_api_uses_the_requesting_user(loans, people):
    kb, doc, hr_kb = loans
    client = login(people["credit_employee"])
    response = client.post(reverse("search"), {"query": "annual leave committee", "k": 5}, content_type="application/json")
    assert response.status_code == 200
    ids = {hit["knowledge_base_id"] for hit in response.json()["results"]}
    assert ids == {kb.pk}
    assert response.json()["results"][0]["version_number"] == 1


def test_search_api_applies_settings_only_of_a_knowledge_base_the_user_may_read(people, credit, hr):
    """An unreadable knowledge base's id answers like a missing one: its retrieval settings (the
    no-answer threshold in `threshold`) are not applied, with or without a question."""
    own = KnowledgeBaseFactory(department=credit, retrieval_settings={"no_answer_bm25_threshold": 0.1313})
    hr_kb = KnowledgeBaseFactory(department=hr, retrieval_settings={"no_answer_bm25_threshold": 0.4242})
    client = login(people["credit_employee"])

    def threshold(kb_id):
        response = client.post(reverse("search"), {"query": "salary", "mode": "bm25", "knowledge_bases": [kb_id]},
                               content_type="application/json")
        assert response.status_code == 200, response.content
        return response.json()["threshold"]

    assert threshold(own.pk) == 0.1313  # a readable knowledge base's own settings still apply
    missing = hr_kb.pk + 100000
    assert threshold(hr_kb.pk) == threshold(missing) != 0.4242
    empty = search(people["credit_employee"], "", knowledge_bases=[hr_kb.pk], mode="bm25")  # answered before searching
    assert empty.threshold == search(people["credit_employee"], "", knowledge_bases=[missing], mode="bm25").threshold != 0.4242
