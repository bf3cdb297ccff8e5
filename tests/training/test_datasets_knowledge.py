from datetime import UTC

import pytest
from django.utils import timezone

from tests.factories import KnowledgeBaseFactory, document, published_document
from tests.training.backends import ScriptedBackend
from training.policy import dataset_policy
from training.services_datasets import DatasetOperationError, dataset_from_knowledge

FAQ = """# 报销 FAQ

问：差旅费怎么报销？
答：在系统中提交发票，三日内审批。

Q: Who approves expenses?
A: Your line manager.

## 截止时间
每月 25 日前提交。
"""


def _kbs(ml, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit KB")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR KB")
    shared_kb = KnowledgeBaseFactory(department=hr, name="Company KB", shared_company_wide=True)
    reviewer = ml["reviewer"]
    docs = {
        "credit": published_document(credit_kb, ml["credit_manager"], reviewer, content=FAQ, title="报销 FAQ"),
        "hr_secret": published_document(hr_kb, ml["hr_manager"], reviewer, content="# 薪酬\n\n经理月薪 5 万。", title="薪酬"),
        "shared": published_document(shared_kb, ml["hr_manager"], reviewer, content="# Holidays\n\nTen days a year.", title="Holidays"),
        "draft": document(credit_kb, ml["credit_manager"], content="# 草稿\n\n未发布。", title="草稿"),
    }
    return credit_kb, hr_kb, shared_kb, docs


def test_rule_based_pairs_from_readable_published_versions_only(ml, credit, hr):
    credit_kb, hr_kb, shared_kb, docs = _kbs(ml, credit, hr)
    version = dataset_from_knowledge(actor=ml["credit_admin"], department=credit, name="KB", use_model=False)
    rows = list(version.rows.all())
    pairs = [(r.prompt, r.answer, r.method) for r in rows]
    assert ("差旅费怎么报销？", "在系统中提交发票，三日内审批。", "kb_faq") in pairs
    assert ("Who approves expenses?", "Your line manager.", "kb_faq") in pairs
    assert ("报销 FAQ中关于“截止时间”的规定是什么？", "每月 25 日前提交。", "kb_heading") in pairs
    assert any(r.answer == "Ten days a year." for r in rows)
    text = " ".join(r.prompt + r.answer for r in rows)
    assert "月薪" not in text and "未发布" not in text  # HR's private KB and a draft stay out
    live = {docs["credit"].live_version_id, docs["shared"].live_version_id}
    assert {vid for r in rows for vid in r.source_version_ids} == live
    assert version.origin == "knowledge" and {d["how"] for d in version.report["documents"]} == {"rules"}
    assert set(version.dataset.source_knowledge_bases.all()) == {credit_kb, shared_kb}


def test_dataset_with_private_knowledge_is_hidden_from_who_cannot_read_it(ml, credit, hr):
    _kbs(ml, credit, hr)
    hr_version = dataset_from_knowledge(actor=ml["hr_admin"], department=hr, name="HR KB", use_model=False)
    assert any("月薪" in r.answer for r in hr_version.rows.all())
    dataset = hr_version.dataset
    # The ML engineer (global training permission, a Credit member) cannot read HR's knowledge base.
    assert dataset not in dataset_policy.instances_user_has_permission_for(ml["ml_engineer"], "view")
    assert dataset in dataset_policy.instances_user_has_permission_for(ml["hr_admin"], "view")
    assert dataset in dataset_policy.instances_user_has_permission_for(ml["superuser"], "view")


def test_model_endpoint_pairs_and_fallback(ml, credit, hr):
    credit_kb, *_ = _kbs(ml, credit, hr)
    backend = ScriptedBackend(reply='```json\n[{"question": "报销要多久？", "answer": "三日内审批。"}, {"question": ""}]\n```')
    version = dataset_from_knowledge(
        actor=ml["credit_admin"], department=credit, knowledge_base_ids=[credit_kb.pk], backend=backend)
    assert [(r.prompt, r.answer, r.method) for r in version.rows.all()] == [("报销要多久？", "三日内审批。", "kb_model")]
    assert "差旅费怎么报销" in backend.calls[0][1]["content"]
    failing = ScriptedBackend(error="connection refused")
    version = dataset_from_knowledge(
        actor=ml["credit_admin"], dataset=version.dataset, knowledge_base_ids=[credit_kb.pk], backend=failing)
    assert version.number == 2 and {r.method for r in version.rows.all()} == {"kb_faq", "kb_heading"}
    assert version.report["documents"][0]["how"] == "rules_fallback"


def test_incremental_builder_takes_documents_changed_since(ml, credit, hr):
    credit_kb, _hr_kb, _shared, docs = _kbs(ml, credit, hr)
    cutoff = timezone.now()
    new = published_document(credit_kb, ml["credit_manager"], ml["reviewer"], content="# 新规\n\n自下月起执行。", title="新规")
    version = dataset_from_knowledge(actor=ml["credit_admin"], department=credit, since=cutoff, use_model=False)
    assert version.origin == "incremental"
    assert {vid for r in version.rows.all() for vid in r.source_version_ids} == {new.live_version_id}
    later = timezone.now()
    with pytest.raises(DatasetOperationError, match="No question-answer pairs"):
        dataset_from_knowledge(actor=ml["credit_admin"], dataset=version.dataset, since=later, use_model=False)
    assert version.dataset.versions.count() == 1


def test_cutoff_for_a_model_version_is_its_training_file():
    from datetime import datetime
    from types import SimpleNamespace

    from training.services_datasets import knowledge_cutoff_for_model

    trained = datetime(2026, 1, 1, tzinfo=UTC)
    snapshot = datetime(2025, 12, 1, tzinfo=UTC)
    with_job = SimpleNamespace(created_at=trained, job=SimpleNamespace(dataset_version=SimpleNamespace(created_at=snapshot)))
    assert knowledge_cutoff_for_model(with_job) == snapshot
    assert knowledge_cutoff_for_model(SimpleNamespace(created_at=trained, job=None)) == trained


def test_knowledge_page_builds_a_dataset(ml, credit, hr):
    from django.urls import reverse

    from tests.conftest import login
    from training.models import Dataset

    credit_kb, hr_kb, _shared, _docs = _kbs(ml, credit, hr)
    client = login(ml["credit_admin"])
    page = client.get(reverse("training:datasets:knowledge"))
    assert page.status_code == 200 and "HR KB" not in page.content.decode()  # not readable: not offered
    response = client.post(reverse("training:datasets:knowledge"), {
        "name": "Credit QA", "department": credit.pk, "knowledge_bases": [credit_kb.pk]})
    dataset = Dataset.objects.get(name="Credit QA")
    assert response.status_code == 302 and dataset.latest_version.row_count == 3
    refused = client.post(reverse("training:datasets:knowledge"), {
        "name": "Sneaky", "department": credit.pk, "knowledge_bases": [hr_kb.pk]})
    assert refused.status_code == 400 and not Dataset.objects.filter(name="Sneaky").exists()


def scripted_backend_factory():
    return ScriptedBackend(reply='[{"question": "报销要多久？", "answer": "三日内审批。"}]')


def test_with_an_endpoint_the_page_runs_a_job_with_progress(ml, credit, hr, settings, django_capture_on_commit_callbacks, monkeypatch):
    from django.urls import reverse

    from core.models import Job, JobStatus
    from core.services import job_execute
    from tests.conftest import login
    from training.models import Dataset

    credit_kb, *_ = _kbs(ml, credit, hr)
    settings.TRAINING_LLM_BACKEND = "tests.training.test_datasets_knowledge:scripted_backend_factory"
    monkeypatch.setattr("core.services.work_dispatch", lambda **kwargs: 0)  # the test runs the job itself
    client = login(ml["credit_admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("training:datasets:knowledge"), {
            "name": "Model QA", "department": credit.pk, "knowledge_bases": [credit_kb.pk], "use_model": "on"})
    job = Job.objects.get()
    assert response["Location"] == reverse("core:job_detail", args=[job.pk]) and job.kind == "dataset_from_knowledge"
    job = job_execute(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    dataset = Dataset.objects.get(name="Model QA")
    assert job.result["url"] == reverse("training:datasets:version", args=[dataset.pk, 1])
    assert [(r.prompt, r.method) for r in dataset.latest_version.rows.all()] == [("报销要多久？", "kb_model")]
    assert client.get(reverse("core:job_detail", args=[job.pk])).status_code == 200
