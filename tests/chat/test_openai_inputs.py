"""/v1 attacker inputs: every malformed request is a 4xx in OpenAI's shape with a clear message,
never a 500, and stores nothing."""

import json

import pytest
from django.test import Client

from accounts.services import api_key_create
from chat.models import Message


@pytest.fixture
def key(people, company_assistant):
    return api_key_create(user=people["credit_employee"], name="test")[1]


BODIES = {
    "role-list": ({"messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role", "role"),
    "role-dict": ({"messages": [{"role": {"a": 1}, "content": "hi"}]}, "messages[0].role", "role"),
    "n-list": ({"messages": [{"role": "user", "content": "hi"}], "n": [1]}, "n", "n=1"),
    "n-dict": ({"messages": [{"role": "user", "content": "hi"}], "n": {"a": 1}}, "n", "n=1"),
    "part-type-list": ({"messages": [{"role": "user", "content": [{"type": ["text"], "text": "hi"}]}]},
                       "messages[0].content", "text"),
    "surrogate": ({"messages": [{"role": "user", "content": "\ud800 loans?"}]}, "messages[0].content", "surrogate"),
    "nul": ({"messages": [{"role": "user", "content": "loans\u0000?"}]}, "messages[0].content", "NUL"),
    "nul-in-history": ({"messages": [{"role": "user", "content": "a\u0000"}, {"role": "assistant", "content": "b"},
                                     {"role": "user", "content": "loans?"}]}, "messages[0].content", "NUL"),
    "model-nul": ({"model": "\u0000", "messages": [{"role": "user", "content": "hi"}]}, "model", "does not exist"),
    "model-surrogate": ({"model": "\udfff", "messages": [{"role": "user", "content": "hi"}]}, "model", "\\udfff"),
}


@pytest.mark.parametrize("extra,param,words", BODIES.values(), ids=BODIES.keys())
def test_v1_malformed_requests_are_a_clear_4xx(company_assistant, key, extra, param, words):
    body = {"model": company_assistant.name, **extra}
    raw = json.dumps(body).encode()  # \ud800 and \u0000 travel as JSON escapes, as any client may send them
    response = Client(raise_request_exception=False).post(
        "/v1/chat/completions", data=raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error
    assert not Message.objects.exists()


@pytest.mark.parametrize("model", ["x" * 5000, "\x00", "%00", "../../etc", "ｃｏｍｐａｎｙ"])
def test_v1_model_detail_odd_ids_are_404(key, model):
    response = Client(raise_request_exception=False).get(f"/v1/models/{model}", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 404, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("header", ["Bearer " + "\x00", "Token a b", "Bearer " + "é" * 10])
def test_v1_odd_authorization_headers_are_401(db, header):
    response = Client(raise_request_exception=False).get("/v1/models", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, (response.status_code, response.content[:300])
