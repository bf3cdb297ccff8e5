"""The OpenAI-compatible backend against a real local HTTP server streaming the OpenAI format."""

import threading
import time

import pytest

from llm.base import BackendError
from llm.openai_compat import OpenAICompatibleBackend
from llm.reasoning import split_think

from .fake_openai import FakeOpenAI

MESSAGES = [{"role": "system", "content": "sources"}, {"role": "user", "content": "Who approves loans?"}]


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def backend(server, **kwargs):
    return OpenAICompatibleBackend(base_url=server.base_url, model="deepseek-r1", api_key="sk-test", **kwargs)


def collect(deltas):
    answer, reasoning = [], []
    for d in deltas:
        (answer if d.kind == "answer" else reasoning).append(d.text)
    return "".join(answer), "".join(reasoning)


def test_streams_answer_sends_key_and_reads_usage(server):
    b = backend(server)
    answer, reasoning = collect(b.stream(MESSAGES, max_tokens=64))
    assert answer == "Loan applications above one million yuan need approval by the credit committee. [1]"
    assert reasoning == ""
    assert b.last_usage.prompt_tokens == 42 and b.last_usage.completion_tokens == 9
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["stream"] is True and request["body"]["model"] == "deepseek-r1"


@pytest.mark.parametrize("mode", ["reasoning_content", "think_tags"])
def test_reasoning_goes_to_its_own_channel(server, mode):
    server.mode = mode
    answer, reasoning = collect(backend(server).stream(MESSAGES))
    assert reasoning == "The user asks who approves. Source 1 says the committee."
    assert "<think>" not in answer and "approves." not in answer
    assert answer.startswith("Loan applications")
    completion = backend(server).complete(MESSAGES)
    assert completion.reasoning == "The user asks who approves. Source 1 says the committee."
    assert "<think>" not in completion.text and completion.text.startswith("Loan applications")


def test_think_tags_split_across_pieces():
    pieces = ["<thi", "nk>reason", "ing</th", "ink>\nthe ans", "wer <b>"]
    answer, reasoning = collect(split_think(pieces))
    assert reasoning == "reasoning" and answer == "the answer <b>"


def test_http_error_is_a_clear_message(server):
    server.mode = "http500"
    with pytest.raises(BackendError, match="HTTP 500: model overloaded"):
        list(backend(server).stream(MESSAGES))


def test_garbage_is_a_clear_message(server):
    server.mode = "garbage"
    with pytest.raises(BackendError, match="not a chat completion stream"):
        list(backend(server).stream(MESSAGES))


def test_a_stream_cut_off_without_an_answer_fails(server):
    server.mode = "cut"
    server.answer_pieces = ["", ""]
    with pytest.raises(BackendError):
        list(backend(server).stream(MESSAGES))


def test_a_slow_server_times_out_instead_of_hanging(server):
    server.mode = "slow"
    b = backend(server, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BackendError, match="timeout"):
        list(b.stream(MESSAGES))
    assert time.monotonic() - started < 3
    server.mode = "hang"
    with pytest.raises(BackendError, match="in time"):
        list(backend(server, read_timeout=0.5).stream(MESSAGES))


def test_a_server_that_is_down_is_a_clear_message():
    b = OpenAICompatibleBackend(base_url="http://127.0.0.1:9/v1", model="m", connect_timeout=0.5)
    with pytest.raises(BackendError, match="cannot be reached"):
        list(b.stream(MESSAGES))


def test_stop_event_ends_the_stream(server):
    server.delay = 0.2
    server.answer_pieces = [f"word{i} " for i in range(30)]
    stop = threading.Event()
    got = []
    for delta in backend(server).stream(MESSAGES, stop_event=stop):
        got.append(delta.text)
        if len(got) == 2:
            stop.set()
    assert len(got) == 2
