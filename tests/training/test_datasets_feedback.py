import json

import pytest

from chat.models import Conversation, Message, Role
from chat.services import feedback_submit
from tests.chat.conftest import kb_corpus  # noqa: F401  (fixture)
from tests.factories import KnowledgeBaseFactory, grant_object, member
from training.datasets.feedback import convert_feedback
from training.services_datasets import dataset_from_chat_feedback, dataset_from_feedback

CONTEXT = [{"id": 301, "text": "员工入职满一年后享有五天带薪年假。", "version_id": 12, "knowledge_base_id": None}]


def record(id, question, answer, correction="", thumbs=None, context=CONTEXT):
    return {"id": id, "question": question, "context": context, "answer": answer, "correction": correction, "thumbs": thumbs}


def test_corrections_become_sft_and_preference_rows():
    out = convert_feedback([
        record(1, "年假有几天？", "三天。", correction="五天。", thumbs="down"),
        record(2, "病假有几天？", "", correction="十天。"),
    ])
    [pref], [sft] = out.preference, out.sft
    assert pref["messages"][1]["content"] == "参考资料：\n[1] 员工入职满一年后享有五天带薪年假。\n\n问题：年假有几天？"
    assert pref["messages"][-1] == {"role": "assistant", "content": "五天。"} and pref["rejected"] == "三天。"
    assert pref["source_version_ids"] == [12] and pref["meta"] == {"feedback_id": 1, "chunk_ids": [301]}
    assert sft["messages"][-1]["content"] == "十天。" and sft["rejected"] == ""
    assert [r["method"] for r in out.payloads] == ["feedback_correction", "feedback_correction"]


def test_thumbs_down_without_correction_pairs_with_a_better_answer_or_is_skipped():
    out = convert_feedback([
        record(1, "年假有几天？", "三天。", thumbs="down"),
        record(2, "年假有几天?", "五天。", thumbs="up"),   # same question once normalized
        record(3, "病假呢？", "不知道。", thumbs="down"),
        record(4, "加班费？", "1.5 倍。", thumbs="up"),
        record(5, "", "x", correction="y"),
    ])
    assert [(p["messages"][-1]["content"], p["rejected"]) for p in out.preference] == [("五天。", "三天。")]
    assert out.sft == []  # thumbs-up answers only with include_thumbs_up
    assert out.skipped == [
        {"id": 2, "reason": "no_signal"}, {"id": 3, "reason": "no_better_answer"},
        {"id": 4, "reason": "no_signal"}, {"id": 5, "reason": "no_question"},
    ]
    with_up = convert_feedback([record(4, "加班费？", "1.5 倍。", thumbs="up")], include_thumbs_up=True)
    assert [r["method"] for r in with_up.sft] == ["feedback_thumbs_up"]


def test_feedback_dataset_records_its_knowledge_bases(ml, credit):
    kb = KnowledgeBaseFactory(department=credit)
    context = [{**CONTEXT[0], "knowledge_base_id": kb.pk}]
    version = dataset_from_feedback(actor=ml["credit_admin"], department=credit, records=[
        record(1, "年假有几天？", "三天。", correction="五天。", context=context)])
    assert version.origin == "feedback" and version.row_count == 1
    assert list(version.dataset.source_knowledge_bases.all()) == [kb]
    assert version.preference_pairs()[0]["rejected"] == [{"role": "assistant", "content": "三天。"}]
    assert version.examples()[0][-1]["content"] == "五天。"
    assert version.report["sft"] == 0 and version.report["preference"] == 1


# --- wired to the chat's Feedback rows, scoped by permission ----------------------------------------



def answered(user, question, answer, chunks):
    conversation = Conversation.objects.create(user=user, title=question)
    return Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, question=question, content=answer,
        retrieved=[{"n": i, "chunk_id": c.pk} for i, c in enumerate(chunks, 1)],
    )


@pytest.mark.django_db
def test_a_dataset_from_chat_feedback_holds_only_what_the_builder_may_read(ml, people, credit, hr, kb_corpus):
    loans = answered(people["credit_manager"], "Who approves large loans?", "The branch.", kb_corpus["loan_chunks"])
    feedback_submit(user=people["credit_manager"], message=loans, rating=-1, correction="The credit committee.")
    leave = answered(people["hr_manager"], "How much annual leave?", "Ten days.", kb_corpus["leave_chunks"])
    feedback_submit(user=people["hr_manager"], message=leave, rating=-1, correction="Twenty days.")
    thumbs_down = answered(people["credit_manager"], "Who approves large loans?", "Nobody.", kb_corpus["loan_chunks"])
    feedback_submit(user=people["credit_manager"], message=thumbs_down, rating=-1)
    # a Credit member who may read the HR handbook, answered from it
    reader = grant_object(member(credit, "employee", "credit_hr_reader"), "view_knowledge", hr)
    grounded = answered(reader, "How much sick leave?", "Five days.", kb_corpus["leave_chunks"])
    feedback_submit(user=reader, message=grounded, rating=-1, correction="Ten days of annual leave.")

    version = dataset_from_chat_feedback(actor=ml["ml_engineer"], department=credit, name="From the chat")
    rows = list(version.rows.order_by("index"))
    text = json.dumps([r.messages for r in rows], ensure_ascii=False) + json.dumps([r.rejected for r in rows])
    # the correction became an example with the retrieved context; the thumbs-down a preference pair
    assert {(r.messages[-1]["content"], r.rejected) for r in rows} == {
        ("The credit committee.", "The branch."), ("The credit committee.", "Nobody.")}
    assert kb_corpus["loan_chunks"][0].text in rows[0].messages[1]["content"]
    assert all(r.source_version_ids == [kb_corpus["loans"].live_version_id] for r in rows)
    # the HR manager's feedback is not Credit's: not taken, not counted; the Credit member's answer from
    # HR knowledge, which the Credit builder cannot read, is withheld: none of its text copied
    assert "Twenty days" not in text and "salary bands" not in text and "annual leave" not in text
    assert "sick leave" not in text
    assert version.report["withheld"] == 1
    # the HR admin building from the same feedback gets the HR example (and not the Credit ones)
    hr_version = dataset_from_chat_feedback(actor=ml["hr_admin"], department=hr)
    assert [r.messages[-1]["content"] for r in hr_version.rows.all()] == ["Twenty days."]


@pytest.mark.django_db
def test_the_datasets_page_builds_from_chat_feedback(ml, people, credit, kb_corpus, client_for):
    client = client_for(ml["ml_engineer"])
    page = client.get("/training/datasets/").content.decode()
    assert 'id="dataset-feedback-form"' in page
    empty = client.post("/training/datasets/from-feedback/", {"feedback-department": credit.pk})
    assert empty.status_code == 400 and "No feedback could become a training example." in empty.content.decode()
    message = answered(people["credit_manager"], "Who approves large loans?", "The branch.", kb_corpus["loan_chunks"])
    feedback_submit(user=people["credit_manager"], message=message, rating=-1, correction="The credit committee.")
    response = client.post("/training/datasets/from-feedback/", {"feedback-department": credit.pk, "feedback-name": "Chat fixes"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "The branch." in page and "1 examples from chat feedback; 0 withheld" in page
    from training.models import Dataset

    assert Dataset.objects.get(name="Chat fixes").latest_version.origin == "feedback"
    # an employee without training rights gets no page and builds nothing
    assert client_for(people["credit_employee"]).post("/training/datasets/from-feedback/",
                                                     {"feedback-department": credit.pk}).status_code == 403
