"""Every answer that was produced is charged to the department's quota exactly once, however its
stream ends: the final event, a client that hangs up (/v1 or a closed chat tab), the stop button, or
a model that breaks off after it began. The pipeline's `finish()` charges; no caller does."""

import json
import threading

import pytest
from django.test import Client

from accounts.models import UsageDay
from accounts.services import api_key_create
from chat.models import EndpointKind, Message, MessageStatus
from chat.pipeline import answer, answer_stream
from chat.services import endpoint_save
from llm.base import BackendError, Delta

from .fake_openai import FakeOpenAI
from .helpers import ask

QUESTION = "Who must approve loan applications above one million yuan?"


def _usage(user) -> tuple[int, int, int]:
    row = UsageDay.objects.get(user=user)
    return row.requests, row.prompt_tokens, row.completion_tokens


def _charged_as_stored(user) -> None:
    """One request, charged exactly the tokens stored on the answer (not twice, not zero)."""
    message = Message.objects.get(role="assistant")
    assert message.usage["prompt_tokens"] + message.usage["completion_tokens"] > 0
    assert _usage(user) == (1, message.usage["prompt_tokens"], message.usage["completion_tokens"])


def _v1(key: str, **body) -> object:
    return Client().post("/v1/chat/completions", data=json.dumps({"messages": [{"role": "user", "content": QUESTION}],
                                                                  **body}),
                         content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


def test_v1_stream_closed_by_the_client_is_charged_and_the_quota_then_refuses(
        people, kb_corpus, company_assistant, settings):
    settings.CHAT_DEPARTMENT_DAILY_TOKENS = 1
    employee = people["credit_employee"]
    key = api_key_create(user=employee, name="test")[1]
    response = _v1(key, model=company_assistant.name, stream=True)
    assert response.status_code == 200
    content = response.streaming_content
    received = b"".join(next(content) for _ in range(3))  # the role chunk and the first answer pieces
    assert b'"content"' in received
    # The client goes away before the final chunk: close the body as a WSGI server does (without
    # the test client's request_finished, which would close the test's database connection).
    response._iterator.close()
    assert Message.objects.get(role="assistant").status == MessageStatus.STOPPED
    _charged_as_stored(employee)
    refused = _v1(key, model=company_assistant.name, stream=True)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"


@pytest.mark.parametrize("stream", [True, False])
def test_v1_answer_read_to_the_end_is_charged_once(people, kb_corpus, company_assistant, stream):
    employee = people["credit_employee"]
    key = api_key_create(user=employee, name="test")[1]
    response = _v1(key, model=company_assistant.name, stream=stream)
    assert response.status_code == 200
    if stream:
        assert b"data: [DONE]" in b"".join(response.streaming_content)
    _charged_as_stored(employee)


def test_chat_page_stream_closed_by_the_tab_is_charged_and_the_quota_then_refuses(
        people, kb_corpus, company_assistant, settings):
    settings.CHAT_DEPARTMENT_DAILY_TOKENS = 1
    employee = people["credit_employee"]
    client = Client()
    client.force_login(employee)
    response = client.post("/chat/ask/", {"assistant": company_assistant.pk, "question": QUESTION})
    content = response.streaming_content
    received = b""
    while b"event: answer" not in received:
        received += next(content)
    response._iterator.close()  # the tab was closed mid-answer
    assert Message.objects.get(role="assistant").status == MessageStatus.STOPPED
    _charged_as_stored(employee)
    refused = client.post("/chat/ask/", {"assistant": company_assistant.pk, "question": QUESTION})
    assert refused.status_code == 429


def test_chat_page_answer_read_to_the_end_is_charged_once(people, kb_corpus, company_assistant):
    client = Client()
    client.force_login(people["credit_employee"])
    assert ask(client, company_assistant, QUESTION)[-1][0] == "done"
    _charged_as_stored(people["credit_employee"])


def _model_assistant(assistant, people, server) -> None:
    assistant.endpoint = endpoint_save(actor=people["superuser"], name="model", kind=EndpointKind.OPENAI,
                                       base_url=server.base_url, model="m")
    assistant.save()


def test_a_stopped_model_answer_is_charged_in_the_models_tokens(people, kb_corpus, company_assistant):
    """The model server reports usage only at the end of its stream: a stopped (or hung-up) answer
    is counted from what was sent and what came back."""
    with FakeOpenAI(delay=0.05, answer_pieces=[f"word{i} " for i in range(40)]) as server:
        _model_assistant(company_assistant, people, server)
        stop = threading.Event()
        events = []
        for event in answer_stream(user=people["credit_employee"], assistant=company_assistant, question=QUESTION,
                                   stop_event=stop):
            events.append(event)
            if sum(1 for e in events if e.type == "answer") == 3:
                stop.set()
    assert events[-1].type == "done" and events[-1].status == MessageStatus.STOPPED
    requests, prompt, completion = _usage(people["credit_employee"])
    assert requests == 1 and prompt > 20 and 3 <= completion < 40
    _charged_as_stored(people["credit_employee"])


class _BreaksOff:
    """A model backend whose stream fails after its first piece."""

    name, context_window, extractive, last_usage = "breaks-off", 4096, False, None

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages, **kwargs):
        yield Delta("answer", "Loan applications above one million yuan need the credit committee. ")
        raise BackendError("The connection to the model server broke off.")


def test_an_answer_that_fails_after_it_began_is_charged_and_one_that_never_began_is_not(
        people, kb_corpus, company_assistant, monkeypatch):
    monkeypatch.setattr("chat.pipeline.backend_for_endpoint", lambda endpoint, **kwargs: _BreaksOff())
    final, _events = answer(user=people["credit_employee"], assistant=company_assistant, question=QUESTION)
    assert final.type == "error" and Message.objects.get(pk=final.message_id).status == MessageStatus.FAILED
    _charged_as_stored(people["credit_employee"])
    # A model server that cannot be reached generated nothing: nothing more is charged.
    company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="down", kind=EndpointKind.OPENAI,
                                               base_url="http://127.0.0.1:9/v1", model="m", connect_timeout_s=0.5)
    company_assistant.save()
    monkeypatch.undo()
    final, _events = answer(user=people["credit_manager"], assistant=company_assistant,
                            question=QUESTION)
    assert final.type == "error"
    assert not UsageDay.objects.filter(user=people["credit_manager"]).exists()
