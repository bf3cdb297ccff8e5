"""Access lost after an answer: the conversation page stops naming, linking and describing the
sources the reader may no longer read, and the model no longer receives that answer as history."""

import pytest

from chat.models import EndpointKind
from chat.pipeline import answer
from chat.services import endpoint_save
from tests.conftest import login

from .fake_openai import FakeOpenAI
from .helpers import ask


@pytest.mark.django_db
def test_history_hides_titles_of_citations_no_longer_readable(kb_corpus, people, hr, company_assistant):
    """HR reads Credit's knowledge base while it is shared; once unshared, the conversation page must
    not keep showing the Credit document's title in the sources panel (the citation link already 404s)."""
    credit_kb = kb_corpus["credit_kb"]
    credit_kb.shared_with.set([hr])
    client = login(people["hr_employee"])
    events = ask(client, company_assistant, "Who must approve loan applications above one million yuan?")
    done = events[-1][1]
    assert done["status"] == "done" and done["citations"], done
    assert any(c["title"] == "Loan approval" for c in done["citations"])
    conversation = next(d for t, d in events if t == "start")["conversation_id"]
    citation_url = done["citations"][0]["url"]
    html = client.get(f"/chat/?c={conversation}").content.decode()
    assert "Loan approval" in html and f'href="{citation_url}"' in html

    credit_kb.shared_with.set([])
    assert client.get(citation_url).status_code == 404  # citation view re-checks
    html = client.get(f"/chat/?c={conversation}").content.decode()
    assert "Loan approval" not in html
    assert "a source you may no longer read" in html
    assert citation_url not in html, "the marker in the answer is no longer a link"
    assert "credit committee" in html  # the answer the user was given stays


@pytest.mark.django_db
def test_answers_citing_what_the_asker_no_longer_reads_are_not_sent_as_history(kb_corpus, people, hr,
                                                                               company_assistant):
    credit_kb = kb_corpus["credit_kb"]
    credit_kb.shared_with.set([hr])
    user = people["hr_employee"]
    with FakeOpenAI() as server:
        company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="model", kind=EndpointKind.OPENAI,
                                                   base_url=server.base_url, model="m")
        company_assistant.save()
        server.answer_pieces = ["Large loans need the credit committee. [1]"]
        first, _ = answer(user=user, assistant=company_assistant,
                          question="Who must approve loan applications above one million yuan?")
        assert first.status == "done" and first.citations[0]["title"] == "Loan approval", first
        conversation = first.message_id and user.conversations.get()

        def follow_up():
            server.requests.clear()
            final, _ = answer(user=user, assistant=company_assistant, conversation=conversation,
                              question="How many days of annual leave do employees receive?")
            assert final.status == "done" and server.requests, final
            return " ".join(str(request["body"]["messages"]) for request in server.requests)

        server.answer_pieces = ["Employees get twenty days. [1]"]
        sent = follow_up()
        assert "credit committee" in sent and "one million yuan" in sent  # readable: it is history
        credit_kb.shared_with.set([])
        sent = follow_up()
        assert "credit committee" not in sent and "one million yuan" not in sent
        assert "twenty days" in sent  # the turns it may still read stay
