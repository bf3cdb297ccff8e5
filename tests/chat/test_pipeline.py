"""The answer pipeline: extractive answers, citation verification, no knowledge, model backends
(through a real local OpenAI-format server), reasoning kept apart, stop and disconnect."""

import threading

import pytest

from chat.models import Assistant, Citation, EndpointKind, Message, MessageStatus, ModelEndpoint
from chat.pipeline import answer, answer_stream, build_prompt, condense_rule_based, verify_citations
from chat.services import endpoint_save
from llm.extractive import ExtractiveBackend, Passage, pick_sentences
from llm.tokens import estimate_tokens
from sources.crypto import decrypt

from .fake_openai import FakeOpenAI


@pytest.mark.django_db
def test_extractive_picks_the_supporting_sentence_with_its_marker():
    passages = [
        Passage(1, "The bank was founded in 1901. Loans above one million need the credit committee. Rates change monthly.", 0.9),
        Passage(2, "Credit cards have a yearly limit review.", 0.4),
    ]
    text = ExtractiveBackend().answer("Who must approve loans above one million?", passages)
    assert text == "Loans above one million need the credit committee. [1]"
    zh = ExtractiveBackend().answer("谁审批超过一百万元的贷款？",
                                    [Passage(1, "本行成立于1901年。超过一百万元的贷款由信贷委员会审批。利率每月调整。", 1.0)])
    assert zh == "超过一百万元的贷款由信贷委员会审批。[1]"
    assert pick_sentences("", passages) == [] and pick_sentences("loans", []) == []


def test_verification_removes_flags_and_adds_markers():
    sources = {1: "Loan applications above one million yuan need approval by the credit committee.",
               2: "Employees receive twenty days of annual leave."}
    text, changes = verify_citations(
        "Loans above one million yuan need approval by the credit committee [1]. "
        "The moon is made of cheese [2]. Employees receive twenty days of annual leave. See also [7].",
        sources)
    assert "[7]" not in text and changes["removed"] == [7]
    assert changes["flagged"][0]["markers"] == [2] and "cheese" in changes["flagged"][0]["sentence"]
    assert changes["added"][0]["marker"] == 2 and "annual leave. [2]" in text
    zh_text, zh_changes = verify_citations("信贷委员会审批超过一百万元的贷款[1]。火星上有水[1]。", {1: "超过一百万元的贷款申请需要信贷委员会审批。"})
    assert len(zh_changes["flagged"]) == 1 and "火星" in zh_changes["flagged"][0]["sentence"]


def test_rule_based_condense_only_for_follow_ups():
    history = [{"role": "user", "content": "What is the loan approval limit?"}, {"role": "assistant", "content": "One million."}]
    assert condense_rule_based("Who approves it?", history) == "What is the loan approval limit? Who approves it?"
    assert condense_rule_based("How many days of annual leave do employees get?", history) == \
        "How many days of annual leave do employees get?"
    assert condense_rule_based("Who approves it?", []) == "Who approves it?"


@pytest.mark.django_db
def test_no_knowledge_answers_in_the_question_language_without_a_model(kb_corpus, people, company_assistant):
    with FakeOpenAI() as server:
        endpoint = endpoint_save(actor=people["superuser"], name="r1", kind=EndpointKind.OPENAI,
                                 base_url=server.base_url, model="deepseek-r1", api_key="sk-secret")
        company_assistant.endpoint = endpoint
        company_assistant.save()
        final, events = answer(user=people["credit_employee"], assistant=company_assistant,
                               question="What is the boiling point of liquid nitrogen on Neptune?")
        assert final.status == MessageStatus.NO_KNOWLEDGE and "no knowledge" in final.answer
        zh, _ = answer(user=people["credit_employee"], assistant=company_assistant, question="海王星上液氮的沸点是多少度？")
        assert zh.status == MessageStatus.NO_KNOWLEDGE and "知识" in zh.answer
        assert server.requests == [], "the model is never called when nothing is relevant"
    assert endpoint.api_key_encrypted and "sk-secret" not in endpoint.api_key_encrypted
    assert decrypt(endpoint.api_key_encrypted) == "sk-secret"


@pytest.mark.django_db
def test_model_answer_reasoning_kept_apart_and_never_in_history(kb_corpus, people, company_assistant):
    with FakeOpenAI() as server:
        server.mode = "think_tags"
        company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="r1", kind=EndpointKind.OPENAI,
                                                   base_url=server.base_url, model="deepseek-r1")
        company_assistant.save()
        final, events = answer(user=people["credit_employee"], assistant=company_assistant,
                               question="Who approves loan applications above one million yuan?")
        assert final.type == "done" and final.status == "done" and not final.extractive
        reasoning = "".join(e.text for e in events if e.type == "reasoning")
        assert reasoning == "The user asks who approves. Source 1 says the committee."
        message = Message.objects.get(pk=final.message_id)
        assert message.reasoning == reasoning and "committee." in message.content
        assert "<think>" not in message.content and "user asks" not in message.content
        assert final.usage == {"prompt_tokens": 42, "completion_tokens": 9}
        assert [c["n"] for c in final.citations] == [1]
        prompt = server.requests[-1]["body"]["messages"]
        assert prompt[0]["role"] == "system" and "[1] Loan approval" in prompt[0]["content"]
        assert "cite" in prompt[0]["content"].lower()
        # A follow-up: the history sent back holds the answer, never the reasoning.
        final2, _ = answer(user=people["credit_employee"], assistant=company_assistant, question="And when does it meet?",
                           conversation=message.conversation)
        for request in server.requests[-2:]:
            sent = str(request["body"]["messages"])
            assert "user asks who approves" not in sent and "<think>" not in sent


@pytest.mark.django_db
def test_a_down_model_server_fails_the_message_retryably(kb_corpus, people, company_assistant):
    company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="down", kind=EndpointKind.OPENAI,
                                               base_url="http://127.0.0.1:9/v1", model="m", connect_timeout_s=0.5)
    company_assistant.save()
    final, events = answer(user=people["credit_employee"], assistant=company_assistant,
                           question="Who approves loan applications above one million yuan?")
    assert final.type == "error" and final.retryable and "cannot be reached" in final.message
    assert Message.objects.get(pk=final.message_id).status == MessageStatus.FAILED
    assert not Message.objects.filter(status=MessageStatus.STREAMING).exists()


@pytest.mark.django_db
def test_stop_and_disconnect_keep_the_partial_answer_marked_stopped(kb_corpus, people, company_assistant):
    with FakeOpenAI() as server:
        server.delay = 0.05
        server.answer_pieces = [f"word{i} " for i in range(40)]
        company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="slow", kind=EndpointKind.OPENAI,
                                                   base_url=server.base_url, model="m")
        company_assistant.save()
        stop = threading.Event()
        events = []
        for event in answer_stream(user=people["credit_employee"], assistant=company_assistant,
                                   question="Who approves loan applications above one million yuan?", stop_event=stop):
            events.append(event)
            if sum(1 for e in events if e.type == "answer") == 3:
                stop.set()
        assert events[-1].type == "done" and events[-1].status == "stopped"
        message = Message.objects.get(pk=events[-1].message_id)
        assert message.status == MessageStatus.STOPPED and message.content.startswith("word0 word1 word2")
        # A client that goes away closes the generator: same outcome.
        stream = answer_stream(user=people["credit_employee"], assistant=company_assistant,
                               question="Who approves loan applications above one million yuan?")
        for event in stream:
            if event.type == "answer":
                break
        stream.close()
        last = Message.objects.filter(role="assistant").latest("pk")
        assert last.status == MessageStatus.STOPPED and last.content.startswith("word0")


def test_prompt_fits_the_context_window_in_the_models_tokens():
    class Tiny:
        context_window = 300
        count_tokens = staticmethod(estimate_tokens)

    sources = [{"n": i, "title": f"Doc {i}", "heading_path": [], "text": "word " * 80} for i in range(1, 6)]
    history = [{"role": "user", "content": "old question " * 50}]
    assistant = Assistant(name="x", system_prompt="Be brief.")
    messages, info = build_prompt(assistant=assistant, question="Which?", sources=sources, history=history,
                                  backend=Tiny(), max_tokens=64)
    total = sum(estimate_tokens(m["content"]) for m in messages)
    assert total <= 300 - 64
    assert 1 <= info["sources_in_prompt"] < 5 and info["history_in_prompt"] == 0
    assert messages[-1] == {"role": "user", "content": "Which?"}


@pytest.mark.django_db
def test_citations_store_chunk_version_document_span_and_hash(kb_corpus, people, company_assistant):
    final, _ = answer(user=people["credit_employee"], assistant=company_assistant,
                      question="Who approves loan applications above one million yuan?")
    citation = Citation.objects.get(message_id=final.message_id, cited=True)
    chunk = kb_corpus["loan_chunks"][0]
    version_text = kb_corpus["loans"].live_version.content
    assert citation.chunk_ref == chunk.pk and citation.document_ref == kb_corpus["loans"].pk
    assert version_text[citation.char_start:citation.char_end] == chunk.text
    import hashlib

    assert citation.text_sha256 == hashlib.sha256(chunk.text.encode()).hexdigest()
    message = Message.objects.get(pk=final.message_id)
    assert message.retrieved[0]["chunk_id"] == chunk.pk and message.retrieved[0]["score"] > 0
