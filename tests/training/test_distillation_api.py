"""Distillation from the API and the datasets pages: a teacher (a real local OpenAI-compatible HTTP
server) answers prompts in a background job run by a real Celery worker; the student job trained on
the result records the teacher. Refusals: no training right, a department not one's own, a teacher
that is not an enabled OpenAI-compatible endpoint, no prompts; a failing teacher ends the job with
its message and writes nothing."""

from __future__ import annotations

import os
import time

import pytest
import redis
from django.urls import reverse
from rest_framework.test import APIClient

from chat.models import ModelEndpoint
from core.models import Job
from tests.chat.fake_openai import FakeOpenAI
from tests.conftest import login
from tests.core.test_worker_integration import broker, worker_process
from training.models import Dataset, DatasetVersion, FineTuningJob
from training.services_datasets import dataset_create, dataset_version_create

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEACHER_ANSWER = "The credit committee approves loans above one million yuan."


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def teacher_server():
    with FakeOpenAI() as fake:
        fake.answer_pieces = ["The credit committee approves ", "loans above one million yuan."]
        yield fake


def endpoint_for(fake, **fields) -> ModelEndpoint:
    return ModelEndpoint.objects.create(**{"name": "Teacher", "kind": "openai", "base_url": fake.base_url,
                                           "model": "deepseek-r1-teacher", **fields})


def qa_version(actor, department) -> DatasetVersion:
    """A dataset of QA pairs (as the knowledge-base builder makes): its questions are prompts."""
    dataset = dataset_create(actor=actor, department=department, name="KB QA")
    version, _ = dataset_version_create(actor=actor, dataset=dataset, origin="knowledge", payloads=[
        {"messages": [{"role": "user", "content": "大额贷款由谁审批？"}, {"role": "assistant", "content": "信贷委员会。"}]},
    ])
    return version


def finished(job_id, proc, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        if proc.poll() is not None:
            pytest.fail(f"worker exited:\n{proc.stdout.read()[-5000:]}")
        time.sleep(0.3)
    pytest.fail(f"job {job_id} still {job.status}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
def test_the_api_distils_in_a_worker_job_and_the_student_records_the_teacher(ml, credit, teacher_server, demo_model_dir):
    engineer = ml["ml_engineer"]
    teacher = endpoint_for(teacher_server)
    source = qa_version(ml["credit_admin"], credit)
    broken = FakeOpenAI(mode="http500")
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with broken, broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL}) as proc:
        response = api(engineer).post("/api/training/datasets/distill/", {
            "name": "Distilled loans", "department": credit.pk, "teacher": teacher.pk,
            "prompts": ["Who approves large loans?", "  "], "prompts_from_version": source.pk,
            "system_prompt": "Be brief.", "max_tokens": 64,
        }, format="json")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["kind"] == "dataset_distill" and body["status"] == "queued"
        job = finished(body["id"], proc)
        progress = api(engineer).get(f"/api/jobs/{body['id']}/").json()
        assert progress["status"] == "succeeded" and progress["progress"] == 1.0, progress
        assert progress["result"]["rows"] == 2 and progress["result"]["teacher"] == "deepseek-r1-teacher"

        # a teacher that answers HTTP 500: the job fails with the teacher's message alone, nothing is written
        response = api(engineer).post("/api/training/datasets/distill/", {
            "name": "Never", "department": credit.pk, "teacher": endpoint_for(broken, name="Overloaded").pk,
            "prompts": ["Who approves large loans?"]}, format="json")
        assert response.status_code == 202, response.content
        failed = finished(response.json()["id"], proc)
    assert failed.status == "failed"
    assert failed.error.startswith("The teacher model failed:") and "Traceback" not in failed.error, failed.error
    assert "500" in failed.error or "overloaded" in failed.error
    assert not Dataset.objects.filter(name="Never").exists()

    # the teacher was asked over HTTP, with the typed prompt and the source version's question
    assert [r["body"]["messages"][-1]["content"] for r in teacher_server.requests] == [
        "Who approves large loans?", "大额贷款由谁审批？"]
    assert all(r["body"]["messages"][0] == {"role": "system", "content": "Be brief."} for r in teacher_server.requests)
    version = Dataset.objects.get(name="Distilled loans").latest_version
    assert job.result["url"] == reverse("training:datasets:version", args=[version.dataset_id, version.number])
    assert version.origin == "distillation" and version.report["teacher"]["model"] == "deepseek-r1-teacher"
    assert [r.answer for r in version.rows.order_by("index")] == [TEACHER_ANSWER] * 2
    assert all(r.method == "distillation" for r in version.rows.all())

    # the student: a job on that version carries the teacher (API and job page)
    response = api(engineer).post("/api/training/fine_tuning/jobs/", {"training_file": version.pk, "method": "lora"},
                                  format="json")
    assert response.status_code == 201, response.content
    assert response.json()["teacher"]["model"] == "deepseek-r1-teacher"
    assert response.json()["teacher"]["base_url"] == teacher_server.base_url
    student = FineTuningJob.objects.get()
    page = login(engineer).get(reverse("training:job_detail", args=[student.pk])).content.decode()
    assert 'id="job-teacher">deepseek-r1-teacher · Teacher<' in page


@pytest.mark.django_db
def test_the_api_refuses_without_the_right_or_with_a_bad_teacher_and_queues_nothing(ml, credit, hr, teacher_server):
    teacher = endpoint_for(teacher_server)
    request = {"name": "D", "department": credit.pk, "teacher": teacher.pk, "prompts": ["Who approves large loans?"]}
    url = "/api/training/datasets/distill/"
    # an employee has no training right; an anonymous caller is not signed in
    assert api(ml["credit_employee"]).post(url, request, format="json").status_code == 403
    assert APIClient().post(url, request, format="json").status_code in (401, 403)
    # a department admin may not build in another department
    response = api(ml["credit_admin"]).post(url, {**request, "department": hr.pk}, format="json")
    assert response.status_code == 400 and "department" in response.json()
    # the teacher must be an enabled OpenAI-compatible endpoint that exists
    disabled = endpoint_for(teacher_server, name="Off", enabled=False)
    extractive = ModelEndpoint.objects.create(name="No model", kind="extractive")
    for bad in (disabled.pk, extractive.pk, 999_999):
        response = api(ml["ml_engineer"]).post(url, {**request, "teacher": bad}, format="json")
        assert response.status_code == 400 and response.json() == {
            "teacher": ["Not an enabled OpenAI-compatible model endpoint."]}, response.content
    # no prompt at all; a source version one may not see
    response = api(ml["ml_engineer"]).post(url, {**request, "prompts": [" "]}, format="json")
    assert response.status_code == 400 and response.json() == {"detail": "Give the teacher at least one prompt."}
    hidden = qa_version(ml["hr_admin"], hr)
    response = api(ml["credit_admin"]).post(url, {**request, "prompts_from_version": hidden.pk}, format="json")
    assert response.status_code == 400 and response.json() == {"prompts_from_version": ["No such dataset version."]}
    assert not Job.objects.exists() and teacher_server.requests == []


@pytest.mark.django_db
def test_the_page_queues_the_job_from_typed_and_file_prompts(ml, credit, teacher_server, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    teacher = endpoint_for(teacher_server)
    client = login(ml["credit_admin"])
    page = client.get(reverse("training:datasets:list")).content.decode()
    assert reverse("training:datasets:distill") in page
    form = client.get(reverse("training:datasets:distill"))
    assert form.status_code == 200 and f'<option value="{teacher.pk}"' in form.content.decode() and ">Teacher</option>" in form.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("training:datasets:distill"), {
            "name": "Distilled", "department": credit.pk, "teacher": teacher.pk, "prompts": "First?\n\nSecond?",
            "prompts_file": SimpleUploadedFile("p.txt", "第三个问题？\n".encode("gb18030")), "max_tokens": 128,
        })
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("core:job_detail", args=[job.pk])
    assert job.kind == "dataset_distill" and job.params["prompts"] == ["First?", "Second?", "第三个问题？"]
    assert job.params["endpoint"] == teacher.pk and job.params["max_tokens"] == 128

    # nothing to ask: the form says so and queues nothing
    response = client.post(reverse("training:datasets:distill"), {
        "name": "Empty", "department": credit.pk, "teacher": teacher.pk, "prompts": "  \n", "max_tokens": 128})
    assert response.status_code == 400 and "Give the teacher at least one prompt." in response.content.decode()
    assert Job.objects.count() == 1
    # an employee without the training right gets no page
    assert login(ml["credit_employee"]).get(reverse("training:datasets:distill")).status_code == 403


@pytest.mark.django_db
def test_the_api_answers_bad_input_with_400_and_queues_nothing(ml, credit, teacher_server):
    teacher = endpoint_for(teacher_server)
    good = {"name": "D", "department": credit.pk, "teacher": teacher.pk, "prompts": ["Who approves large loans?"]}
    url = "/api/training/datasets/distill/"
    client = api(ml["ml_engineer"])
    bad_bodies = [
        {**good, "department": "credit"},                 # wrong types
        {**good, "teacher": {"id": teacher.pk}},
        {**good, "prompts": "one prompt, not a list"},
        {**good, "prompts": [{"role": "user"}]},
        {**good, "max_tokens": -1},
        {**good, "prompts": ["x" * 30_000]},             # one prompt longer than any context
        {**good, "prompts": ["q"] * 5_001},              # more prompts than one job asks
        {**good, "system_prompt": "s" * 30_000},
        {**good, "name": "n" * 500},
    ]
    for body in bad_bodies:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (str(body)[:80], response.status_code, response.content[:300])
    nested = '{"name": "D", "prompts": ' + "[" * 3000 + '"x"' + "]" * 3000 + "}"  # thousands of levels
    for raw in ("{not json", nested):
        assert client.post(url, raw, content_type="application/json").status_code == 400
    assert not Job.objects.exists() and teacher_server.requests == []
