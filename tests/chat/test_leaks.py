"""An employee never receives a chunk, citation, title or text of a knowledge base they cannot
read: not in the SSE stream, the page, the citation view or the stored history; through every
assistant, including one configured by someone who reads more."""

import json

import pytest

from chat.models import Assistant, Citation, Message
from chat.services import assistant_save
from tests.conftest import login

from .helpers import ask, sse_events

SECRET_WORDS = ("Annual leave secret", "confidential", "twenty days")


def _assert_clean(blob: str):
    for word in SECRET_WORDS:
        assert word not in blob, word


@pytest.fixture
def hr_assistant(kb_corpus, people):
    """Configured by an admin over the HR knowledge base, open to everyone (only admins configure
    company-wide assistants)."""
    return assistant_save(actor=people["superuser"], name="HR helper", knowledge_bases=[kb_corpus["hr_kb"]],
                          departments=[])


@pytest.mark.django_db
def test_no_leak_through_any_assistant_stream_page_or_history(kb_corpus, people, company_assistant, hr_assistant):
    employee = people["credit_employee"]
    client = login(employee)
    question = "How many days of annual leave do employees receive, and what are the salary bands?"  # no secret words
    for assistant in (company_assistant, hr_assistant):
        events = ask(client, assistant, question)
        _assert_clean(json.dumps(events, ensure_ascii=False))
        kb_ids = {kb_corpus["credit_kb"].pk}
        sources = next(d for t, d in events if t == "sources")["sources"]
        for source in sources:
            assert source["document_id"] != kb_corpus["leave"].pk
    # The HR assistant over a knowledge base the employee cannot read: no knowledge, not HR's text.
    assert events[-1][1]["status"] == "no_knowledge"
    # Stored history: no HR chunk anywhere.
    hr_chunks = {c.pk for c in kb_corpus["leave_chunks"]}
    for message in Message.objects.filter(conversation__user=employee):
        assert not hr_chunks & {r["chunk_id"] for r in message.retrieved}
        _assert_clean(message.content)
    assert not Citation.objects.filter(message__conversation__user=employee, chunk_ref__in=hr_chunks).exists()
    # The page with every conversation.
    for message in Message.objects.filter(conversation__user=employee):
        _assert_clean(client.get(f"/chat/?c={message.conversation_id}").content.decode())


@pytest.mark.django_db
def test_citations_of_someone_elses_answer_never_open(kb_corpus, people, company_assistant):
    hr = login(people["hr_employee"])
    done = ask(hr, company_assistant, "How many days of annual leave do employees receive?")[-1][1]
    assert done["status"] == "done" and done["citations"]
    url = done["citations"][0]["url"]
    assert hr.get(url).status_code == 200
    credit = login(people["credit_employee"])
    response = credit.get(url)
    assert response.status_code == 404
    _assert_clean(response.content.decode())
    assert credit.post(f"/chat/messages/{done['message_id']}/regenerate/").status_code == 404


@pytest.mark.django_db
def test_restricted_assistants_are_invisible_and_unusable(kb_corpus, people, hr):
    restricted = assistant_save(actor=people["hr_manager"], name="HR only", departments=[hr])
    credit = login(people["credit_employee"])
    assert "HR only" not in credit.get("/chat/").content.decode()
    events = sse_events(credit.post("/chat/ask/", {"assistant": restricted.pk, "question": "annual leave days?"}))
    assert [t for t, _ in events] == ["error"]
    assert not Message.objects.filter(conversation__user=people["credit_employee"]).exists()
    assert "HR only" in login(people["hr_employee"]).get("/chat/").content.decode()


@pytest.mark.django_db
def test_an_assistant_configured_by_a_broader_reader_searches_as_the_asker(kb_corpus, people, company_assistant):
    # The superuser reads everything and builds an assistant over both knowledge bases.
    broad = assistant_save(actor=people["superuser"], name="Everything",
                           knowledge_bases=[kb_corpus["hr_kb"], kb_corpus["credit_kb"]])
    events = ask(login(people["credit_employee"]), broad, "annual leave days salary bands loans committee")
    _assert_clean(json.dumps(events, ensure_ascii=False))
    documents = {s["document_id"] for s in next(d for t, d in events if t == "sources")["sources"]}
    assert documents and kb_corpus["leave"].pk not in documents
    assert Assistant.objects.filter(pk=broad.pk).exists()


@pytest.mark.django_db
def test_streamed_scores_do_not_reveal_words_of_unreadable_knowledge(kb_corpus, people):
    """A word only HR's knowledge holds, added to a Credit employee's question, changes the scores
    the chat streams back no more than a word no document holds (BM25 counts what the asker reads)."""
    bm25 = assistant_save(actor=people["superuser"], name="Keyword", retrieval_settings={"mode": "bm25"})
    client = login(people["credit_employee"])

    def scores(question):
        events = ask(client, bm25, question)
        sources = next(d for t, d in events if t == "sources")
        return [s["score"] for s in sources["sources"]], sources["top_score"]

    with_hr_word = scores("loan committee confidential")  # "confidential": only in HR's document
    assert with_hr_word[0], "the Credit chunk is found"
    assert with_hr_word == scores("loan committee qqxqzzv")
