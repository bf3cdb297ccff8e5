"""Datasets never widen who reads what: feedback datasets take only their department's conversations
and record every knowledge base their text came from (a borrowed better answer's, earlier turns'),
distillation keeps its source's restrictions, the knowledge builder records every knowledge base it
read, and bad upload text is a 400 naming its row."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from chat.models import Conversation, Message, ModelEndpoint, Role
from chat.services import feedback_submit
from core.models import Job
from tests.chat.conftest import kb_corpus  # noqa: F401  (fixture)
from tests.chat.fake_openai import FakeOpenAI
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, grant_object, member
from tests.retrieval.helpers import published
from training.datasets.feedback import convert_feedback
from training.datasets.formats import parse_upload
from training.models import Dataset, DatasetVersion
from training.services_datasets import (
    DatasetOperationError,
    dataset_create,
    dataset_distill,
    dataset_from_chat_feedback,
    dataset_from_knowledge,
    dataset_version_create,
)
from training.tasks_datasets import dataset_distill_job

pytestmark = pytest.mark.django_db

SECRET_QUESTION = "Which borrower, Acme Steel, was approved for 80 million yuan by the credit committee?"


def api(user, **kwargs) -> APIClient:
    client = APIClient(**kwargs)
    client.force_authenticate(user)
    return client


def answered(user, question, answer, chunks, conversation=None):
    conversation = conversation or Conversation.objects.create(user=user, title=question)
    return Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, question=question, content=answer,
        retrieved=[{"n": i, "chunk_id": c.pk} for i, c in enumerate(chunks, 1)],
    )


def rows_text(version) -> str:
    return json.dumps([[r.messages, r.rejected] for r in version.rows.all()], ensure_ascii=False)


# --- feedback datasets: the department's conversations only -------------------------------------------


def test_feedback_dataset_excludes_other_departments_conversations(ml, people, credit, hr, kb_corpus):
    """An HR employee's private chat (answered without retrieved knowledge) must not end up in a dataset
    a Credit admin builds and reads: conversations are visible to their owner only."""
    private = answered(people["hr_employee"], "Can I take extra leave during my divorce from Zhang Wei?",
                       "I found nothing on this.", [])
    feedback_submit(user=people["hr_employee"], message=private, rating=-1,
                    correction="HR grants five days of compassionate leave for the divorce.")
    client = login(ml["credit_admin"])
    response = client.post("/training/datasets/from-feedback/",
                           {"feedback-department": credit.pk, "feedback-name": "Credit fixes"})
    if response.status_code == 302:
        page = client.get(response["Location"]).content.decode()
        export = "".join(
            client.get(f"/training/datasets/{v.dataset_id}/v{v.number}/export.jsonl").content.decode()
            for v in DatasetVersion.objects.filter(dataset__name="Credit fixes"))
        seen = page + export
    else:
        seen = response.content.decode()
    assert "divorce" not in seen and "Zhang Wei" not in seen


def test_even_the_company_admin_builds_a_department_dataset_from_that_department_only(ml, people, credit, hr, kb_corpus):
    """Whoever builds it, the dataset's readers are its department's admins: it takes the feedback of
    that department's members alone, and counts as withheld only what it left out among theirs."""
    private = answered(people["hr_employee"], "Can I take extra leave during my divorce?", "I found nothing.", [])
    feedback_submit(user=people["hr_employee"], message=private, rating=-1, correction="Five days, for the divorce.")
    hr_knowledge = answered(people["hr_manager"], "How much annual leave?", "Ten days.", kb_corpus["leave_chunks"])
    feedback_submit(user=people["hr_manager"], message=hr_knowledge, rating=-1, correction="Twenty days.")
    loans = answered(people["credit_manager"], "Who approves large loans?", "The branch.", [])
    feedback_submit(user=people["credit_manager"], message=loans, rating=-1, correction="The credit committee.")
    # an answer in someone else's conversation does not make the other department's chat Credit's
    foreign = answered(people["hr_employee"], "What is my salary band?", "Band 7.", [])
    feedback_submit(user=people["credit_manager"], message=foreign, rating=-1, correction="Band 7, 90k.")

    version = dataset_from_chat_feedback(actor=people["superuser"], department=credit, name="Credit fixes")
    text = rows_text(version)
    assert "The credit committee." in text
    assert "divorce" not in text and "Twenty days" not in text and "salary band" not in text
    assert version.report["withheld"] == 0  # nothing of Credit's was left out
    # HR's dataset takes HR's, and the Credit builder's own department is no bar for the company admin
    hr_version = dataset_from_chat_feedback(actor=people["superuser"], department=hr, name="HR fixes")
    assert "divorce" in rows_text(hr_version) and "Twenty days" in rows_text(hr_version)
    assert "The credit committee." not in rows_text(hr_version)
    assert set(hr_version.dataset.source_knowledge_bases.all()) == {kb_corpus["hr_kb"]}


def test_the_withheld_count_is_of_the_departments_feedback_only(ml, people, credit, hr, kb_corpus):
    """The '… withheld' message tells how much of the department's own feedback was left out for
    knowledge the builder may not read, never how much other departments have."""
    for n in range(3):  # HR's feedback on HR knowledge: none of Credit's business, not counted
        message = answered(people["hr_manager"], f"Leave question {n}?", "Ten days.", kb_corpus["leave_chunks"])
        feedback_submit(user=people["hr_manager"], message=message, rating=-1, correction="Twenty days.")
    reader = grant_object(member(credit, "employee", "credit_hr_reader"), "view_knowledge", hr)
    grounded = answered(reader, "How much annual leave?", "Ten days.", kb_corpus["leave_chunks"])
    feedback_submit(user=reader, message=grounded, rating=-1, correction="Twenty days.")
    loans = answered(people["credit_manager"], "Who approves large loans?", "The branch.", kb_corpus["loan_chunks"])
    feedback_submit(user=people["credit_manager"], message=loans, rating=-1, correction="The credit committee.")

    client = login(ml["credit_admin"])
    response = client.post("/training/datasets/from-feedback/",
                           {"feedback-department": credit.pk, "feedback-name": "Credit fixes"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "1 examples from chat feedback; 1 withheld" in page
    version = Dataset.objects.get(name="Credit fixes").latest_version
    assert version.report["withheld"] == 1 and "Twenty days" not in rows_text(version)


def test_feedback_dataset_records_the_knowledge_of_a_borrowed_better_answer(ml, people, credit, hr, kb_corpus):
    """A thumbs-down row is paired with a 'better answer' taken from another feedback (a thumbs-up that is
    itself not used). That answer quotes HR knowledge: the HR knowledge base is recorded on the dataset,
    so a Credit admin (who cannot read HR knowledge) does not see it."""
    reader = grant_object(member(credit, "employee", "credit_hr_reader"), "view_knowledge", hr)
    good = answered(reader, "How much annual leave do employees receive?",
                    "Employees receive twenty days of annual leave; the salary bands are confidential.",
                    kb_corpus["leave_chunks"])
    feedback_submit(user=reader, message=good, rating=1)
    poor = answered(people["credit_employee"], "How much annual leave do employees receive?", "Ten days.", [])
    feedback_submit(user=people["credit_employee"], message=poor, rating=-1)

    version = dataset_from_chat_feedback(actor=people["superuser"], department=credit, name="Leave fixes")
    assert "twenty days" in rows_text(version).lower()  # the borrowed answer is in the rows
    [row] = version.rows.all()
    assert row.meta["chosen_from_feedback_id"] == good.feedback.get().pk
    assert row.source_version_ids == [kb_corpus["leave"].live_version_id]
    response = login(ml["credit_admin"]).get(f"/api/training/dataset-versions/{version.pk}/rows/")
    assert "twenty days" not in response.content.decode().lower()
    assert kb_corpus["hr_kb"] in version.dataset.source_knowledge_bases.all()


def test_convert_feedback_collects_the_knowledge_bases_of_every_record_a_row_takes_text_from():
    context = [{"id": 1, "text": "Twenty days.", "version_id": 7, "knowledge_base_id": 70}]
    out = convert_feedback([
        {"id": 1, "question": "Leave?", "answer": "Twenty days.", "thumbs": "up", "context": context},
        {"id": 2, "question": "Leave?", "answer": "Ten days.", "thumbs": "down", "context": [],
         "knowledge_base_ids": [80]},
        {"id": 3, "question": "Loans?", "answer": "Ask.", "thumbs": "up", "context": [],
         "knowledge_base_ids": [90]},  # not used: its knowledge base is not recorded
    ])
    [row] = out.preference
    assert row["messages"][-1]["content"] == "Twenty days." and row["rejected"] == "Ten days."
    assert row["source_version_ids"] == [7] and row["meta"]["chosen_from_feedback_id"] == 1
    assert out.knowledge_base_ids == {70, 80}


def test_a_follow_up_answer_records_the_knowledge_of_the_turns_it_saw(ml, people, credit, hr, kb_corpus):
    """A follow-up was answered without retrieval, but the earlier turn the model saw quoted the HR
    handbook: that knowledge base is recorded (and a builder who cannot read it withholds the row)."""
    reader = grant_object(member(credit, "employee", "credit_hr_reader"), "view_knowledge", hr)
    first = answered(reader, "How much annual leave?", "Twenty days; salary bands are confidential.",
                     kb_corpus["leave_chunks"])
    follow_up = answered(reader, "And in weeks?", "Four weeks.", [], conversation=first.conversation)
    feedback_submit(user=reader, message=follow_up, rating=-1, correction="Four weeks of annual leave.")

    with pytest.raises(DatasetOperationError):
        dataset_from_chat_feedback(actor=ml["ml_engineer"], department=credit, name="Withheld")
    assert not Dataset.objects.filter(name="Withheld").exists()
    version = dataset_from_chat_feedback(actor=people["superuser"], department=credit, name="Follow-ups")
    assert "Four weeks of annual leave." in rows_text(version)
    assert set(version.dataset.source_knowledge_bases.all()) == {kb_corpus["hr_kb"]}
    assert api(ml["credit_admin"]).get(f"/api/training/dataset-versions/{version.pk}/rows/").status_code == 404


# --- distillation keeps its source's restrictions ----------------------------------------------------


@pytest.fixture
def teacher():
    with FakeOpenAI() as fake:
        fake.answer_pieces = ["A teacher answer."]
        yield ModelEndpoint.objects.create(name="Teacher", kind="openai", base_url=fake.base_url, model="t")


def knowledge_version(actor, department, kb, question=SECRET_QUESTION):
    dataset = dataset_create(actor=actor, department=department, name="Credit KB QA")
    version, _ = dataset_version_create(actor=actor, dataset=dataset, origin="knowledge", payloads=[
        {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "Yes."}]},
    ], knowledge_base_ids=[kb.pk])
    return version


def test_distilling_a_knowledge_dataset_into_another_department_keeps_it_hidden(ml, credit, hr, kb_corpus, teacher):
    engineer = ml["ml_engineer"]  # a Credit employee with the global training permission: reads Credit's KB
    source = knowledge_version(engineer, credit, kb_corpus["credit_kb"])
    assert api(ml["hr_admin"]).get(f"/api/training/dataset-versions/{source.pk}/rows/").status_code == 404

    response = api(engineer).post("/api/training/datasets/distill/", {
        "name": "HR distilled", "department": hr.pk, "teacher": teacher.pk,
        "prompts_from_version": source.pk}, format="json")
    assert response.status_code == 202, response.content
    dataset_distill_job(Job.objects.get(pk=response.json()["id"]))

    distilled = Dataset.objects.get(name="HR distilled")
    assert set(distilled.source_knowledge_bases.all()) == {kb_corpus["credit_kb"]}
    assert distilled.latest_version.report["prompts_from"] == {"dataset": source.dataset_id, "version": 1,
                                                              "version_id": source.pk}
    rows = api(ml["hr_admin"]).get(f"/api/training/dataset-versions/{distilled.latest_version_id}/rows/")
    assert "Acme Steel" not in rows.content.decode()
    # the engineer, who reads the Credit knowledge base, sees the distilled rows
    rows = api(engineer).get(f"/api/training/dataset-versions/{distilled.latest_version_id}/rows/")
    assert "Acme Steel" in rows.content.decode()


def test_the_distillation_page_passes_the_source_version_too(ml, credit, hr, kb_corpus, teacher,
                                                             django_capture_on_commit_callbacks):
    source = knowledge_version(ml["ml_engineer"], credit, kb_corpus["credit_kb"])
    response = login(ml["ml_engineer"]).post("/training/datasets/distill/", {
        "name": "HR distilled", "department": hr.pk, "teacher": teacher.pk, "prompts_from": source.pk,
        "max_tokens": 64})
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = Job.objects.filter(kind="dataset_distill").latest("pk")
    assert job.params["prompts_from_version"] == source.pk
    dataset_distill_job(job)
    assert set(Dataset.objects.get(name="HR distilled").source_knowledge_bases.all()) == {kb_corpus["credit_kb"]}


def test_chat_conversations_are_distilled_into_their_own_department_only(ml, people, credit, hr, kb_corpus, teacher):
    """A feedback dataset holds its department's members' conversations: distilling its questions into
    another department would show them to that department's admins. Refused; within the department
    the distilled rows carry the mark on, so a second distillation is refused too."""
    message = answered(people["credit_manager"], "Can I take leave for my divorce from Li Na?", "Unsure.", [])
    feedback_submit(user=people["credit_manager"], message=message, rating=-1, correction="Yes, five days.")
    feedback = dataset_from_chat_feedback(actor=ml["ml_engineer"], department=credit, name="Credit fixes")
    engineer = api(ml["ml_engineer"])
    request = {"name": "HR distilled", "department": hr.pk, "teacher": teacher.pk, "prompts_from_version": feedback.pk}
    response = engineer.post("/api/training/datasets/distill/", request, format="json")
    assert response.status_code == 400 and "that department only" in response.json()["detail"]
    assert not Job.objects.filter(kind="dataset_distill").exists()

    response = engineer.post("/api/training/datasets/distill/", {**request, "department": credit.pk,
                                                                "name": "Credit distilled"}, format="json")
    assert response.status_code == 202, response.content
    dataset_distill_job(Job.objects.get(pk=response.json()["id"]))
    distilled = Dataset.objects.get(name="Credit distilled")
    assert distilled.department == credit and "Li Na" in rows_text(distilled.latest_version)
    with pytest.raises(DatasetOperationError):
        dataset_distill(actor=ml["ml_engineer"], department=hr, endpoint=teacher, prompts=["Li Na?"],
                        prompts_from=distilled.latest_version)
    response = engineer.post("/api/training/datasets/distill/", {
        **request, "prompts_from_version": distilled.latest_version_id}, format="json")
    assert response.status_code == 400


# --- the knowledge builder's report --------------------------------------------------------------


def test_knowledge_dataset_report_does_not_name_documents_of_unrecorded_knowledge_bases(ml, people, credit, hr, kb_corpus):
    """Documents that gave no pair (no usable text, e.g. a scan) are listed (title, ids) in the
    version's report: their knowledge base is recorded too, so Credit's admin, who may not read it,
    does not see the dataset."""
    restructuring = KnowledgeBaseFactory(department=hr, name="HR restructuring")
    published(restructuring, people["hr_manager"], "Layoff list 2025: Zhang Wei, Li Na", ["  "])
    published(kb_corpus["credit_kb"], people["credit_manager"], "Credit FAQ",
              ["Q: Who approves loans above one million yuan?\nA: The credit committee."])
    version = dataset_from_knowledge(actor=people["superuser"], department=credit, name="KB QA", use_model=False,
                                     knowledge_base_ids=[kb_corpus["credit_kb"].pk, restructuring.pk])
    assert "Layoff list 2025" in json.dumps(version.report)  # the HR document, which gave no pair
    assert restructuring in version.dataset.source_knowledge_bases.all()
    assert restructuring.pk in version.report["knowledge_bases"]
    body = api(ml["credit_admin"]).get(f"/api/training/dataset-versions/{version.pk}/").content.decode()
    page = login(ml["credit_admin"]).get(f"/training/datasets/{version.dataset_id}/v{version.number}/").content.decode()
    assert "Layoff list 2025" not in body and "Layoff list 2025" not in page


# --- bad upload text ----------------------------------------------------------------------------


def upload(name: str, content: bytes):
    file = io.BytesIO(content)
    file.name = name
    return file


def test_upload_with_a_lone_surrogate_is_a_400_naming_the_row(ml, credit):
    content = b'{"instruction": "q", "output": "a"}\n{"instruction": "\\ud800", "output": "x"}\n'
    response = api(ml["credit_admin"], raise_request_exception=False).post("/api/training/datasets/", {
        "name": "s", "department": credit.pk, "file": upload("rows.jsonl", content)}, format="multipart")
    assert response.status_code == 400, response.status_code
    [error] = response.json()["errors"]
    assert error["line"] == 2 and error["field"] == "instruction" and "surrogate" in error["reason"]
    assert not Dataset.objects.filter(name="s").exists()
    # every text field is checked: messages, the system prompt, the rejected reply; CSV's messages too
    for content in (b'{"messages": [{"role": "user", "content": "q\\udfff"}, {"role": "assistant", "content": "a"}]}',
                    b'{"instruction": "q", "output": "a", "system": "\\udc00"}',
                    b'{"instruction": "q", "output": "a", "rejected": "\\ud83d"}'):
        result = parse_upload("rows.jsonl", content)
        assert [(e.line, "surrogate" in e.reason) for e in result.errors] == [(1, True)], result.errors
    result = parse_upload("rows.csv", b'messages\n"[{""role"": ""user"", ""content"": ""\\ud800""}, '
                                      b'{""role"": ""assistant"", ""content"": ""a""}]"\n')
    assert [(e.line, e.field, "surrogate" in e.reason) for e in result.errors] == [(2, "messages[1].content", True)]
    # the page says so too
    response = login(ml["credit_admin"]).post("/training/datasets/new/", {
        "name": "p", "department": credit.pk, "format": "auto", "file": upload("rows.jsonl", content)})
    assert response.status_code == 400


def test_json_line_separators_inside_strings_do_not_split_rows():
    """U+2028, U+2029 and U+0085 are valid inside JSON strings: only "\\n" (or "\\r\\n") ends a row."""
    question = "First line\u2028second\u2029third\u0085fourth\x1cfifth"
    records = [{"instruction": question, "output": "A."}, {"instruction": "Q2", "output": "B."}]
    jsonl = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    for name, data in (("rows.jsonl", jsonl), ("rows.json", json.dumps(records, ensure_ascii=False).encode())):
        result = parse_upload(name, data)
        assert not result.errors, (name, result.errors)
        assert [p["messages"][0]["content"] for p in result.payloads] == [question, "Q2"]
        assert [p["meta"]["line"] for p in result.payloads] == [1, 2]


def test_the_audit_lists_versions_holding_feedback_from_outside_their_department(ml, people, credit, hr):
    """A feedback dataset built before the fix (taken as such a builder wrote it: rows naming any
    department's feedback) is listed by `feedback_datasets_audit`; one of its own department's is not."""
    from django.core.management import call_command

    hr_private = answered(people["hr_employee"], "Can I take extra leave during my divorce?", "I found nothing.", [])
    hr_feedback = feedback_submit(user=people["hr_employee"], message=hr_private, rating=-1, correction="Five days.")
    loans = answered(people["credit_manager"], "Who approves large loans?", "The branch.", [])
    credit_feedback = feedback_submit(user=people["credit_manager"], message=loans, rating=-1, correction="The committee.")

    def row(feedback, question):
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "An answer."}],
                "meta": {"feedback_id": feedback.pk}}

    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="Old feedback")
    dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="feedback",
                           payloads=[row(hr_feedback, "Divorce leave?"), row(credit_feedback, "Large loans?")])
    clean = dataset_create(actor=ml["credit_admin"], department=credit, name="Own feedback")
    dataset_version_create(actor=ml["credit_admin"], dataset=clean, origin="feedback",
                           payloads=[row(credit_feedback, "Large loans?")])
    out = io.StringIO()
    call_command("feedback_datasets_audit", stdout=out)
    lines = out.getvalue().splitlines()
    assert json.loads(lines[-1])["versions"] == [{"dataset": dataset.pk, "name": "Old feedback", "department": credit.code,
                                                  "version": 1, "rows": 2, "rows_outside": 1}]
    assert any('"Old feedback"' in line and "1 of 2 rows" in line for line in lines)
