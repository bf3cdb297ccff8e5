"""Evaluation in the RAG setting: the questions go through the chat's own pipeline (retrieval as the
evaluation's author, the assistant's settings, citation verification) with the evaluated model
version as the backend, not through a re-implemented prompt."""

from __future__ import annotations

import pytest

from chat.models import Conversation, Message
from llm.local import for_active_model
from training import job_services as services
from training.evaluation import run_evaluation
from training.finetune.demo_model import ensure_demo_model
from training.services_datasets import dataset_create, dataset_version_create

from tests.chat.conftest import company_assistant, kb_corpus  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def qa(question, answer, **extra):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], **extra}


@pytest.fixture
def rag_dataset(ml, kb_corpus, credit):
    loans_version = kb_corpus["loans"].live_version_id
    dataset = dataset_create(actor=ml["ml_engineer"], department=credit, name="RAG questions")
    version, _ = dataset_version_create(actor=ml["ml_engineer"], dataset=dataset, origin="upload", payloads=[
        qa("Who approves loan applications above one million yuan?", "The credit committee.",
           source_version_ids=[loans_version]),
        qa("When does the credit committee meet?", "Every Tuesday.", source_version_ids=[loans_version]),
        # another department's knowledge: the author (Credit) may not read it, so the answer is "no knowledge"
        qa("How many days of annual leave do employees receive, and what are the salary bands?", "Twenty days.",
           meta={"unanswerable": True}),
    ])
    return version


def test_rag_evaluation_asks_the_chat_pipeline_with_the_version_as_backend(ml, kb_corpus, company_assistant, rag_dataset):
    author = ml["ml_engineer"]
    base = services.base_model_version_get_or_create(path=str(ensure_demo_model()))
    evaluation = services.evaluation_create(
        actor=author, model_version=base, dataset_version=rag_dataset, split="all",
        options={"rag": True, "robustness": False}, check_permission=False,
    )
    metrics, _items = run_evaluation(evaluation)

    assert metrics["rag_assistant"] == company_assistant.name
    assert set(metrics) >= {"rag_answer_accuracy", "rag_citation_accuracy", "rag_abstention"}
    assert 0 <= metrics["rag_answer_accuracy"] <= 1 and 0 <= metrics["rag_citation_accuracy"] <= 1
    samples = {s["question"]: s for s in metrics["rag_samples"]}
    # the HR document is not retrievable by a Credit author: abstained, nothing of it cited or said
    leave = samples["How many days of annual leave do employees receive, and what are the salary bands?"]
    assert leave["abstained"] and kb_corpus["leave"].live_version_id not in leave["citations"]
    assert "twenty" not in leave["answer"].lower()
    assert metrics["rag_abstention"] == 1.0
    # the knowledge bases the samples drew on are recorded (they decide who sees the samples)
    assert list(evaluation.rag_knowledge_bases.all()) == [kb_corpus["credit_kb"]]
    # the answerable ones were answered by the evaluated version (the chat's finetuned backend)
    loans = samples["Who approves loan applications above one million yuan?"]
    assert not loans["abstained"] and loans["answer"]
    # the evaluation's conversations are not left in anyone's history; the chat's active model is untouched
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert for_active_model() is None
    # nor do its questions count as the author's department's chat usage (the daily token quota)
    from accounts.models import UsageDay

    assert not UsageDay.objects.exists()


def test_rag_evaluation_serves_the_evaluated_version_through_the_pipeline(ml, kb_corpus, company_assistant, rag_dataset,
                                                                          monkeypatch):
    import chat.pipeline

    seen = []
    real = chat.pipeline.answer

    def spy(**kwargs):
        final, events = real(**kwargs)
        seen.append(final.backend if final.type == "done" else final.message)
        return final, events

    monkeypatch.setattr(chat.pipeline, "answer", spy)
    base = services.base_model_version_get_or_create(path=str(ensure_demo_model()))
    evaluation = services.evaluation_create(
        actor=ml["ml_engineer"], model_version=base, dataset_version=rag_dataset, split="all",
        options={"rag": True, "robustness": False}, check_permission=False,
    )
    run_evaluation(evaluation)
    assert seen and all(name == f"finetuned:{base.pk}" for name in seen if name), seen


def test_rag_evaluation_without_an_assistant_says_so(ml, kb_corpus, rag_dataset):
    from chat.models import Assistant

    Assistant.objects.all().delete()
    base = services.base_model_version_get_or_create(path=str(ensure_demo_model()))
    evaluation = services.evaluation_create(
        actor=ml["ml_engineer"], model_version=base, dataset_version=rag_dataset, split="all",
        options={"rag": True, "robustness": False}, check_permission=False,
    )
    metrics, _ = run_evaluation(evaluation)
    assert "No assistant" in metrics["rag_error"] and "rag_answer_accuracy" not in metrics
