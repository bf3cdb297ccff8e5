"""The OpenAI-compatible /v1 endpoint, driven by the official `openai` client against the live server.

The default assistant uses the extractive backend (no model). Reasoning and a slow stream come from
a real HTTP server started here that speaks the OpenAI streaming protocol.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import openai
import pytest

from accounts.limits import usage_record
from accounts.models import UsageDay
from accounts.services import api_key_create, api_key_revoke
from chat.models import Assistant, Citation, Conversation, EndpointKind, Message, MessageStatus, ModelEndpoint

from .fake_openai import FakeOpenAI

LOANS_QUESTION = "Who must approve loan applications above one million yuan?"
HR_QUESTION = "How many days of annual leave do employees receive, and what are the salary bands?"
HR_WORDS = ("twenty days", "salary bands", "Annual leave secret")


@pytest.fixture
def company(db):
    # Data-migration rows do not survive the flush of live-server tests: make sure it is there.
    assistant, _ = Assistant.objects.get_or_create(is_default=True, defaults={"name": "Company assistant"})
    return assistant


@pytest.fixture
def key_for():
    def make(user):
        return api_key_create(user=user, name="test")[1]

    return make


@pytest.fixture
def client_for_key(live_server):
    def make(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0, timeout=60)

    return make


@pytest.fixture
def employee_client(people, kb_corpus, company, key_for, client_for_key):
    return client_for_key(key_for(people["credit_employee"]))


def _assert_no_hr(text: str) -> None:
    for word in HR_WORDS:
        assert word not in text, word


def test_non_streaming_answer_with_citations(employee_client, kb_corpus, company, people):
    completion = employee_client.chat.completions.create(
        model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}]
    )
    message = completion.choices[0].message
    assert "credit committee" in message.content
    citations = message.model_extra["citations"]
    assert citations and {c["document_id"] for c in citations} <= {kb_corpus["loans"].pk, kb_corpus["zh"].pk}
    assert all(c["url"].startswith("http://") and c["version_id"] for c in citations)
    assert message.model_extra["status"] == "done"
    assert completion.model == company.name and completion.usage is not None
    stored = Message.objects.get(pk=int(completion.id.removeprefix("chatcmpl-")))
    assert stored.conversation.channel == "api" and stored.conversation.user == people["credit_employee"]
    assert stored.content == message.content and stored.status == MessageStatus.DONE
    assert UsageDay.objects.get(user=people["credit_employee"]).requests == 1


def test_streaming_answer_ends_with_citations(employee_client, kb_corpus, company):
    stream = employee_client.chat.completions.create(
        model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "credit committee" in text
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1
    citations = final[0].model_extra["citations"]
    assert citations and citations == final[0].choices[0].delta.model_extra["citations"]
    assert {c["document_id"] for c in citations} <= {kb_corpus["loans"].pk, kb_corpus["zh"].pk}
    assert final[0].model_extra["verified_content"].startswith(text[:20])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage
    assert len({c.id for c in chunks}) == 1


def test_models_are_the_assistants_the_user_may_use(employee_client, people, company, hr):
    hr_only = Assistant.objects.create(name="HR helper")
    hr_only.departments.add(hr)
    ids = [m.id for m in employee_client.models.list()]
    assert company.name in ids and "HR helper" not in ids
    assert employee_client.models.retrieve(company.name).id == company.name
    with pytest.raises(openai.NotFoundError) as info:
        employee_client.chat.completions.create(model="HR helper", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        employee_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert not Message.objects.exists()


def test_a_revoked_key_is_refused(people, kb_corpus, company, client_for_key):
    api_key, key = api_key_create(user=people["credit_employee"])
    client = client_for_key(key)
    assert client.models.list().data
    api_key_revoke(actor=people["credit_employee"], api_key=api_key)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}])
    assert "revoked" in info.value.message and info.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client_for_key("dsk-not-a-key").models.list()
    assert not Message.objects.exists()


def test_rate_limit_answers_429_with_retry_after(employee_client, company, settings):
    settings.CHAT_USER_REQUESTS_PER_MINUTE = 2
    for _ in range(2):
        employee_client.chat.completions.create(model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}])
    with pytest.raises(openai.RateLimitError) as info:
        employee_client.chat.completions.create(model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}])
    retry_after = int(info.value.response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert info.value.body["code"] == "rate_limit_exceeded" and "2 requests per minute" in info.value.message
    assert Message.objects.filter(role="assistant").count() == 2


def test_department_daily_quota_answers_429_until_midnight(employee_client, company, people, settings):
    settings.CHAT_DEPARTMENT_DAILY_TOKENS = 1000
    usage_record(user=people["credit_manager"], prompt_tokens=900, completion_tokens=100)  # same department
    with pytest.raises(openai.RateLimitError) as info:
        employee_client.chat.completions.create(model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}])
    assert info.value.body["code"] == "insufficient_quota" and "daily quota of 1,000 tokens" in info.value.message
    assert 0 < int(info.value.response.headers["Retry-After"]) <= 86400
    assert not Message.objects.exists()


def test_a_user_in_no_department_answers_429_over_their_own_daily_quota(people, kb_corpus, company, key_for,
                                                                        client_for_key, settings):
    settings.CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS = 1000
    usage_record(user=people["outsider"], prompt_tokens=900, completion_tokens=100)
    with pytest.raises(openai.RateLimitError) as info:
        client_for_key(key_for(people["outsider"])).chat.completions.create(
            model=company.name, messages=[{"role": "user", "content": LOANS_QUESTION}])
    assert info.value.body["code"] == "insufficient_quota" and "your daily quota of 1,000 tokens" in info.value.message
    assert not Message.objects.exists()


def test_no_chunk_citation_title_or_text_from_an_unreadable_kb(people, kb_corpus, company, key_for, client_for_key):
    """Through the default assistant and through one an HR manager configured on the HR knowledge base."""
    hr_assistant = Assistant.objects.create(name="Leave assistant", created_by=people["hr_manager"])
    hr_assistant.knowledge_bases.add(kb_corpus["hr_kb"])  # open to every department
    client = client_for_key(key_for(people["credit_employee"]))
    hr_docs = {kb_corpus["leave"].pk}
    for assistant in (company, hr_assistant):
        completion = client.chat.completions.create(model=assistant.name, messages=[{"role": "user", "content": HR_QUESTION}])
        message = completion.choices[0].message
        _assert_no_hr(json.dumps(completion.model_dump(), ensure_ascii=False))
        assert not {c["document_id"] for c in message.model_extra["citations"]} & hr_docs
        raw = list(client.chat.completions.create(
            model=assistant.name, messages=[{"role": "user", "content": HR_QUESTION}], stream=True))
        _assert_no_hr(json.dumps([c.model_dump() for c in raw], ensure_ascii=False))
    assert completion.choices[0].message.model_extra["status"] == "no_knowledge"
    # Nor in what was stored for the employee.
    stored = Message.objects.filter(conversation__user=people["credit_employee"], role="assistant")
    assert stored.exists()
    _assert_no_hr(json.dumps(list(stored.values("content", "retrieved")), ensure_ascii=False))
    assert not Citation.objects.filter(message__in=stored, document_id__in=hr_docs).exists()
    # The HR employee does get it, through the same assistant.
    hr_client = client_for_key(key_for(people["hr_employee"]))
    answer = hr_client.chat.completions.create(model=hr_assistant.name, messages=[{"role": "user", "content": HR_QUESTION}])
    assert "twenty days" in answer.choices[0].message.content


@pytest.mark.parametrize(
    "messages,param",
    [
        ([{"role": "user", "content": ""}], "messages"),
        ([{"role": "user", "content": "   "}], "messages"),
        ([{"role": "user", "content": "贷款" * 10_000}], "messages"),  # 20,000 characters
        ([], "messages"),
        ([{"role": "user", "content": LOANS_QUESTION}, {"role": "assistant", "content": "x"}], "messages"),
        ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}], "messages[0].content"),
    ],
    ids=["empty", "blank", "20000-chars", "no-messages", "last-not-user", "bad-role", "image"],
)
def test_bad_input_is_a_clear_400_and_stores_nothing(employee_client, company, messages, param):
    with pytest.raises(openai.BadRequestError) as info:
        employee_client.chat.completions.create(model=company.name, messages=messages)
    assert info.value.body["param"] == param and info.value.body["message"]
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_thousands_of_turns_use_the_recent_history_and_store_one_exchange(employee_client, company):
    turns = []
    for i in range(1500):
        turns += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    completion = employee_client.chat.completions.create(
        model=company.name, messages=[*turns, {"role": "user", "content": LOANS_QUESTION}])
    assert "credit committee" in completion.choices[0].message.content
    assert Message.objects.count() == 2  # the question and the answer, not 3,000 turns


def _connection(live_server) -> http.client.HTTPConnection:
    parts = urlsplit(live_server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def _request(live_server, method: str, path: str, body: bytes | None = None, key: str | None = None,
             scheme: str = "Bearer") -> tuple[int, dict]:
    connection = _connection(live_server)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"{scheme} {key}"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def test_raw_http_errors_have_openai_shape(live_server, people, company, key_for):
    key = key_for(people["credit_employee"])
    path = "/v1/chat/completions"
    status, body = _request(live_server, "POST", path, b"{not json", key)
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = _request(live_server, "POST", path, json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), key)
    assert status == 400 and body["error"]["param"] == "model"
    status, body = _request(live_server, "POST", path, json.dumps({"model": company.name, "messages": []}).encode())
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = _request(live_server, "GET", path, key=key)
    assert status == 405 and "error" in body
    status, body = _request(live_server, "GET", "/v1/models", key=key, scheme="Token")
    assert status == 200 and body["object"] == "list"
    assert not Message.objects.exists()


# ---------------------------------------------------------------------------------------------
# A model server speaking the OpenAI streaming protocol: reasoning, then an answer citing [1].


def FakeModelServer(*, delay: float = 0.0, pieces: int = 6) -> FakeOpenAI:
    """The one fake OpenAI-format server (tests/chat/fake_openai.py), as a reasoning model: its
    reasoning in `reasoning_content`, then the answer in `pieces` chunks."""
    words = "Loan applications above one million yuan need approval by the credit committee [1]. "
    return FakeOpenAI(mode="reasoning_content", delay=delay,
                      reasoning_pieces=["The sources say the committee approves. "],
                      answer_pieces=[words] + [" The credit committee approves large loans [1]."] * (pieces - 1),
                      usage={"prompt_tokens": 120, "completion_tokens": 30},
                      stream_usage={"prompt_tokens": 120, "completion_tokens": 30})


def _model_assistant(url: str) -> Assistant:
    endpoint = ModelEndpoint.objects.create(name="fake", kind=EndpointKind.OPENAI, base_url=url, model="deepseek-r1",
                                            read_timeout_s=10)
    return Assistant.objects.create(name="Reasoner", endpoint=endpoint)


def test_reasoning_comes_in_reasoning_content_and_usage_counts(employee_client, people):
    with FakeModelServer() as server:
        assistant = _model_assistant(server.url)
        completion = employee_client.chat.completions.create(
            model="Reasoner", messages=[{"role": "user", "content": LOANS_QUESTION}])
        message = completion.choices[0].message
        assert message.model_extra["reasoning_content"].startswith("The sources say")
        assert "credit committee" in message.content and "sources say" not in message.content
        assert completion.usage.prompt_tokens == 120 and completion.usage.completion_tokens == 30
        chunks = list(employee_client.chat.completions.create(
            model=assistant.name, messages=[{"role": "user", "content": LOANS_QUESTION}], stream=True))
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning.startswith("The sources say") and "sources say" not in content
    stored = Message.objects.filter(role="assistant").order_by("pk")
    assert all("sources say" not in m.content and m.reasoning for m in stored)
    usage = UsageDay.objects.get(user=people["credit_employee"])
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (2, 240, 60)


def test_client_disconnect_mid_stream_stops_cleanly(employee_client, people, live_server, key_for):
    with FakeModelServer(delay=0.2, pieces=50) as server:
        _model_assistant(server.url)
        key = key_for(people["credit_employee"])
        connection = _connection(live_server)
        body = {"model": "Reasoner", "stream": True, "messages": [{"role": "user", "content": LOANS_QUESTION}]}
        connection.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        received = [response.readline() for _ in range(8)]
        assert any(b'"content": "Loan' in line for line in received)
        response.close()  # the client goes away mid-stream
        connection.close()
        # The client went away: the answer is kept as far as it got, marked stopped, never "streaming".
        deadline = time.monotonic() + 30
        message = Message.objects.get(role="assistant")
        while message.status == MessageStatus.STREAMING and time.monotonic() < deadline:
            time.sleep(0.1)
            message.refresh_from_db()
        assert message.status == MessageStatus.STOPPED
        assert "credit committee" in message.content
        # ... and charged (stored and charged together), in the model's tokens, though the model
        # server never got to report its usage.
        usage = UsageDay.objects.get(user=people["credit_employee"])
        assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (
            1, message.usage["prompt_tokens"], message.usage["completion_tokens"])
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert server.finished.wait(30)
    # The server is still fine.
    assert employee_client.models.list().data


def test_v1_is_documented_in_the_openapi_schema(people, client_for):
    schema = client_for(people["credit_employee"]).get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for text in ("/v1/chat/completions", "/v1/models", "reasoning_content", "citations", "Retry-After", "/api/auth/keys/"):
        assert text in schema, text


def test_a_model_server_that_is_down_gives_a_clear_error_and_a_failed_message(employee_client):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _model_assistant(f"http://127.0.0.1:{port}/v1")
    with pytest.raises(openai.InternalServerError) as info:
        employee_client.chat.completions.create(model="Reasoner", messages=[{"role": "user", "content": LOANS_QUESTION}])
    assert info.value.status_code == 503 and "cannot be reached" in info.value.message
    with pytest.raises(openai.APIError) as streamed:
        list(employee_client.chat.completions.create(
            model="Reasoner", messages=[{"role": "user", "content": LOANS_QUESTION}], stream=True))
    assert "cannot be reached" in streamed.value.message
    statuses = list(Message.objects.filter(role="assistant").values_list("status", flat=True))
    assert statuses == [MessageStatus.FAILED, MessageStatus.FAILED]
