"""Search remembers what it returned without writing on the request; the roll-up turns that into a
last-retrieved day per chunk, written only when the day moves forward."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from retrieval import usage
from retrieval.models import ChunkRetrieval
from retrieval.search import search
from tests.factories import KnowledgeBaseFactory

from .helpers import published

pytestmark = pytest.mark.django_db

LOAN = "Loan applications above one million yuan need approval by the credit committee."
CAFETERIA = "The cafeteria opens at seven in the morning and closes at eight in the evening."


@pytest.fixture
def chunks(people, credit):
    usage.rollup()  # nothing left over from another test
    kb = KnowledgeBaseFactory(department=credit)
    loan = published(kb, people["credit_manager"], "Loan approval", [LOAN])[1][0]
    cafeteria = published(kb, people["credit_manager"], "Cafeteria", [CAFETERIA])[1][0]
    return loan, cafeteria


def searched_sql(user, query, **kwargs):
    with CaptureQueriesContext(connection) as captured:
        results = search(user, query, **kwargs)
    return [q["sql"] for q in captured.captured_queries], results


def test_a_returned_chunk_gets_its_day_after_the_roll_up_and_search_writes_nothing(chunks, people):
    loan, cafeteria = chunks
    user = people["credit_employee"]
    search(user, "credit committee approval", k=1)  # warm per-process caches
    usage.rollup()
    ChunkRetrieval.objects.all().delete()

    first, results = searched_sql(user, "Who approves loan applications above one million yuan?", k=1)
    assert [hit.chunk.pk for hit in results] == [loan.pk]
    second, _ = searched_sql(user, "Who approves loans of more than a million yuan?", k=1)
    # The request path: no write, nothing about retrieval dates, and no more statements than before.
    for sql in first + second:
        assert not sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")), sql
        assert "chunkretrieval" not in sql
    assert len(first) == len(second)
    assert not ChunkRetrieval.objects.exists()
    assert loan.pk in usage.pending()[timezone.localdate()]

    assert usage.rollup() == 1
    assert dict(ChunkRetrieval.objects.values_list("chunk_id", "last_retrieved")) == {loan.pk: timezone.localdate()}
    # The same day again writes nothing; an older day moves forward.
    search(user, "credit committee approval", k=1)
    assert usage.rollup() == 0
    ChunkRetrieval.objects.update(last_retrieved=timezone.localdate() - dt.timedelta(days=100))
    search(user, "credit committee approval", k=1)
    assert usage.rollup() == 1
    assert ChunkRetrieval.objects.get(chunk=loan).last_retrieved == timezone.localdate()
    assert not ChunkRetrieval.objects.filter(chunk=cafeteria).exists()


@pytest.mark.django_db(transaction=True)
def test_a_web_search_is_rolled_up_after_its_response(chunks, people, client_for, settings):
    loan, _ = chunks
    settings.RETRIEVAL_USAGE_ROLLUP_SECONDS = 0
    response = client_for(people["credit_employee"]).post(
        "/api/retrieval/search/", {"query": "Who approves loan applications above one million yuan?", "k": 1},
        content_type="application/json")
    assert response.status_code == 200 and [r["chunk_id"] for r in response.json()["results"]] == [loan.pk]
    assert ChunkRetrieval.objects.get().chunk_id == loan.pk


@pytest.mark.django_db(transaction=True)
def test_the_roll_up_after_a_response_leaves_no_idle_connection(chunks, people, settings):
    loan, _ = chunks
    settings.RETRIEVAL_USAGE_ROLLUP_SECONDS = 0
    search(people["credit_employee"], "Who approves loan applications above one million yuan?", k=1)
    connection.close()  # what Django's own request_finished handler did first (CONN_MAX_AGE 0)
    usage.on_request_finished(None)
    assert connection.connection is None
    assert ChunkRetrieval.objects.get().chunk_id == loan.pk


def test_hit_testing_is_not_a_use_of_the_knowledge(chunks, people, client_for):
    loan, _ = chunks
    page = client_for(people["credit_manager"]).get(
        "/retrieval/", {"knowledge_base": loan.knowledge_base_id, "query": "Who approves loan applications above one million yuan?",
                        "mode": "hybrid"}).content.decode()
    assert LOAN in page
    assert usage.pending() == {}
    usage.rollup()
    assert not ChunkRetrieval.objects.exists()


def test_filters_on_knowledge_bases_the_user_may_not_read_give_nothing_not_an_error(chunks, people, client_for):
    """Found by fuzzing the OpenAPI schema: a filter with no readable knowledge base was a 500."""
    loan, _ = chunks
    body = {"query": "loan approval credit committee", "knowledge_bases": [loan.knowledge_base_id], "tags": ["policy"]}
    hr = client_for(people["hr_employee"]).post("/api/retrieval/search/", body, content_type="application/json")
    assert hr.status_code == 200 and hr.json()["results"] == [] and hr.json()["no_answer"] is True
    results = search(people["hr_employee"], "loan approval", knowledge_bases=[loan.knowledge_base_id],
                     filters={"updated_after": timezone.now() - dt.timedelta(days=1)})
    assert list(results) == [] and results.no_answer
    # The same filter for a reader of that knowledge base still narrows as before.
    credit = client_for(people["credit_employee"]).post(
        "/api/retrieval/search/", {**body, "tags": []}, content_type="application/json")
    assert [r["chunk_id"] for r in credit.json()["results"]][:1] == [loan.pk]
