"""Documents search has not returned in 90 days, per knowledge base a manager manages."""

import datetime as dt

import pytest
from django.utils import timezone

from knowledge.models import Document
from retrieval import usage
from retrieval.models import ChunkRetrieval
from retrieval.search import search
from tests.factories import KnowledgeBaseFactory
from tests.retrieval.helpers import published

pytestmark = pytest.mark.django_db


def aged(document, days):
    Document.objects.filter(pk=document.pk).update(created_at=timezone.now() - dt.timedelta(days=days))
    return document


@pytest.fixture
def documents(people, credit, hr):
    usage.rollup()
    manager = people["credit_manager"]
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit handbook")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR handbook")
    searched, _ = published(credit_kb, manager, "Loan approval", ["Loan applications above one million yuan need the credit committee."])
    aged(searched, 200)
    unsearched, _ = published(credit_kb, manager, "Cafeteria hours", ["The cafeteria opens at seven in the morning."])
    aged(unsearched, 120)
    recent, _ = published(credit_kb, manager, "New rule", ["A rule published last week."])
    aged(recent, 7)
    forgotten, chunks = published(credit_kb, manager, "Old memo", ["An old memo about parking permits."])
    aged(forgotten, 300)
    ChunkRetrieval.objects.create(chunk=chunks[0], last_retrieved=timezone.localdate() - dt.timedelta(days=120))
    hr_doc, _ = published(hr_kb, people["hr_manager"], "HR archive note", ["Payroll closes on the 25th."])
    aged(hr_doc, 150)
    assert search(people["credit_employee"], "Who approves loan applications above one million yuan?", k=1)
    usage.rollup()
    return {"searched": searched, "unsearched": unsearched, "recent": recent, "forgotten": forgotten, "hr": hr_doc}


def test_documents_not_retrieved_in_90_days_are_listed_to_their_managers_only(documents, people, client_for):
    credit_page = client_for(people["credit_manager"]).get("/health/not-retrieved/").content.decode()
    assert f'data-unretrieved="{documents["unsearched"].pk}"' in credit_page
    assert f'data-unretrieved="{documents["forgotten"].pk}"' in credit_page
    assert (timezone.localdate() - dt.timedelta(days=120)).isoformat() in credit_page  # the old memo's last day
    for name in ("searched", "recent", "hr"):
        assert f'data-unretrieved="{documents[name].pk}"' not in credit_page
    assert "HR archive note" not in credit_page
    hr_page = client_for(people["hr_manager"]).get("/health/not-retrieved/").content.decode()
    assert f'data-unretrieved="{documents["hr"].pk}"' in hr_page and "Cafeteria hours" not in hr_page
    overview = client_for(people["credit_manager"]).get("/health/").content.decode()
    assert 'data-figure="unretrieved_documents"><b>2<' in overview
    assert client_for(people["credit_employee"]).get("/health/not-retrieved/").status_code == 403
