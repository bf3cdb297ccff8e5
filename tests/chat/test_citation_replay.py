"""Citations open the exact version that was cited, through the version policy."""

import pytest

from chat.models import Citation
from knowledge.ingestion.services import versions_ingest_run
from knowledge.services import document_submit, document_version_create, review_approve
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, published_document

from .helpers import ask

V1 = "# Loans\n\nLoan applications above one million yuan need approval by the credit committee."
V2 = "# Loans\n\nLoan applications above two million yuan need approval by the board of directors."
V3 = "# Loans\n\nDRAFT: loan applications above five million yuan need the shareholders."


def _publish_edit(document, manager, reviewer, content):
    version = document_version_create(actor=manager, document=document, content=content,
                                      base_version_number=document.latest_version.number, change_note="update")
    review = document_submit(actor=manager, document=document)
    if review is not None:
        review_approve(actor=reviewer, review=review)
    versions_ingest_run(version_ids=[version.pk])
    document.refresh_from_db()
    return version


@pytest.mark.django_db
def test_an_answer_given_on_v1_still_opens_v1_after_v2_is_published(people, credit, company_assistant):
    manager, reviewer, employee = people["credit_manager"], people["reviewer"], people["credit_employee"]
    kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    document = published_document(kb, manager, reviewer, content=V1, title="Loan approval")
    v1 = document.live_version
    versions_ingest_run(version_ids=[v1.pk])
    client = login(employee)
    done = ask(client, company_assistant, "Who approves loan applications above one million yuan?")[-1][1]
    assert done["status"] == "done", done
    citation = done["citations"][0]
    assert citation["version_id"] == v1.pk and citation["version_number"] == 1

    v2 = _publish_edit(document, manager, reviewer, V2)
    assert document.live_version_id == v2.pk
    page = client.get(citation["url"])
    assert page.status_code == 200, "a reader may open every version that was ever published"
    html = page.content.decode()
    marked = html.split('<mark id="cited-passage" class="cited">', 1)[1].split("</mark>", 1)[0]
    assert "Loan applications above one million yuan need approval by the credit committee." in marked
    assert "A newer version exists." in html and f"/knowledge/documents/{document.pk}/" in html
    assert "board of directors" not in html



@pytest.mark.django_db
def test_a_crafted_citation_never_opens_a_draft(people, credit, company_assistant):
    manager, reviewer, employee = people["credit_manager"], people["reviewer"], people["credit_employee"]
    kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    document = published_document(kb, manager, reviewer, content=V1, title="Loan approval")
    versions_ingest_run(version_ids=[document.live_version_id])
    client = login(employee)
    done = ask(client, company_assistant, "Who approves loan applications above one million yuan?")[-1][1]
    citation = done["citations"][0]
    assert client.get(citation["url"]).status_code == 200
    # A draft v2 (never published) cannot be opened through a crafted citation.
    v3 = document_version_create(actor=manager, document=document, content=V3, base_version_number=1, change_note="draft")
    Citation.objects.filter(message_id=done["message_id"], marker=citation["n"]).update(version_ref=v3.pk, version=v3)
    response = client.get(citation["url"])
    assert response.status_code == 404 and "shareholders" not in response.content.decode()
    # The manager, who may read drafts, is still refused: the citation belongs to someone else.
    assert login(manager).get(citation["url"]).status_code == 404
    assert client.get(f"/chat/messages/{done['message_id']}/sources/99/").status_code == 404
