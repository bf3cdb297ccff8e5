from tests.factories import KnowledgeBaseFactory
from training.datasets.feedback import convert_feedback
from training.services_datasets import dataset_from_feedback

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
