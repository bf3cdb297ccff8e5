import pytest

from tests.training.backends import EchoBackend, ScriptedBackend
from training.services_datasets import DatasetOperationError, dataset_augment, dataset_create, dataset_version_create


def qa(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


@pytest.fixture
def version(ml, credit):
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="d")
    v, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload", payloads=[
        qa("如何申请年假？需要提交什么材料？", "在人事系统中提交申请。"),
        qa("How do employees apply for leave?", "Through the HR system."),
        qa("年假", "五天"),  # nothing to replace
    ])
    return v


def test_synonym_replacement_marks_new_rows(ml, version):
    v2, created = dataset_augment(actor=ml["credit_admin"], version=version, method="synonym", seed=3)
    rows = list(v2.rows.all())
    assert created and v2.origin == "augment" and len(rows) == 5
    assert [r.augmented for r in rows] == [False, False, False, True, True]
    new_zh, new_en = rows[3], rows[4]
    assert new_zh.method == "synonym" and new_zh.meta["augmented_from"] == 0
    assert new_zh.prompt != rows[0].prompt and new_zh.answer == rows[0].answer
    assert new_en.prompt != rows[1].prompt and new_en.meta["augmented_from"] == 1
    assert v2.report["added"] == 2 and v2.report["unchanged"] == 1
    again, _ = dataset_augment(actor=ml["credit_admin"], version=version, method="synonym", seed=3)
    assert [r.prompt for r in again.rows.all()] == [r.prompt for r in rows]  # seeded


def test_paraphrase_and_back_translation_through_the_endpoint(ml, version):
    backend = EchoBackend(lambda system, text: f"（改写）{text}" if system.startswith("Rewrite") else text[::-1])
    v2, _ = dataset_augment(actor=ml["credit_admin"], version=version, method="paraphrase", backend=backend)
    assert [r.prompt for r in v2.rows.filter(augmented=True)] == [
        "（改写）如何申请年假？需要提交什么材料？", "（改写）How do employees apply for leave?", "（改写）年假"]
    back = EchoBackend(lambda system, text: {"How do employees apply for leave?": "员工如何请假？",
                                             "员工如何请假？": "How can staff request leave?"}.get(text, text))
    v3, _ = dataset_augment(actor=ml["credit_admin"], version=version, method="back_translation", backend=back)
    assert [r.prompt for r in v3.rows.filter(augmented=True)] == ["How can staff request leave?"]
    assert "English" in back.calls[0][0]["content"] or "Chinese" in back.calls[0][0]["content"]


def test_endpoint_methods_need_an_endpoint_and_failures_are_reported(ml, version, settings):
    settings.TRAINING_LLM_BACKEND = None
    with pytest.raises(DatasetOperationError, match="TRAINING_LLM_BACKEND"):
        dataset_augment(actor=ml["credit_admin"], version=version, method="paraphrase")
    with pytest.raises(DatasetOperationError, match="added no new rows"):
        dataset_augment(actor=ml["credit_admin"], version=version, method="paraphrase",
                        backend=ScriptedBackend(error="timeout"))
    assert version.dataset.versions.count() == 1
