"""Attacker inputs and other users' ids on the chat surface: a clear refusal (4xx, or an error
event), never a 500 and never someone else's conversation."""

import pytest

from chat.models import Message
from chat.pipeline import answer
from tests.conftest import login

from .helpers import ask

HUGE = "99999999999999999999999"


@pytest.mark.django_db
@pytest.mark.parametrize("method,path,data", [
    ("get", f"/chat/?c={HUGE}", None),
    ("get", "/chat/?c=-1", None),
    ("get", "/chat/?c=abc", None),
    ("get", f"/chat/messages/{HUGE}/sources/1/", None),
    ("get", f"/chat/messages/1/sources/{HUGE}/", None),
    ("post", f"/chat/messages/{HUGE}/feedback/", {"rating": "1"}),
    ("post", f"/chat/messages/{HUGE}/regenerate/", {}),
    ("post", f"/chat/messages/{HUGE}/stop/", {}),
    ("post", f"/chat/conversations/{HUGE}/rename/", {"title": "x"}),
    ("post", f"/chat/conversations/{HUGE}/delete/", {}),
    ("post", "/chat/ask/", {"assistant": HUGE, "question": "hi"}),
    ("post", "/chat/ask/", {"assistant": "abc", "question": "hi"}),
    ("get", f"/api/chat/assistants/{HUGE}/", None),
    ("get", "/api/chat/assistants/abc/", None),
    ("get", f"/chat/assistants/{HUGE}/", None),
])
def test_malformed_and_huge_ids_never_500(people, method, path, data):
    client = login(people["credit_manager"])
    client.raise_request_exception = False
    response = getattr(client, method)(path, data) if data is not None else getattr(client, method)(path)
    assert response.status_code < 500, (path, response.status_code)


@pytest.mark.django_db
def test_asking_in_someone_elses_or_a_huge_conversation_is_refused(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    client.raise_request_exception = False
    done = ask(login(people["hr_employee"]), company_assistant, "How many days of annual leave?")
    conversation = next(d for t, d in done if t == "start")["conversation_id"]
    events = ask(client, company_assistant, "annual leave", conversation=conversation)
    assert [t for t, _ in events] == ["error"]
    events = ask(client, company_assistant, "annual leave", conversation=HUGE)
    assert [t for t, _ in events] == ["error"]


@pytest.mark.django_db
def test_a_question_with_a_nul_or_a_lone_surrogate_is_a_clear_error_and_stores_nothing(kb_corpus, people,
                                                                                     company_assistant):
    client = login(people["credit_employee"])
    client.raise_request_exception = False
    events = ask(client, company_assistant, "Who approves loans\x00?")
    assert [t for t, _ in events] == ["error"] and "NUL" in events[0][1]["message"]
    # A form post cannot carry a lone surrogate (undecodable bytes become U+FFFD), other callers can.
    final, _events = answer(user=people["credit_employee"], assistant=company_assistant, question="\ud800 loans?")
    assert final.type == "error" and "surrogate" in final.message and final.message_id is None
    assert not Message.objects.exists()
