"""Distillation: a teacher model behind an OpenAI-compatible endpoint (a real local HTTP server
speaking the protocol) answers prompts; its answers become a dataset version that records the
teacher, and a job trained on it carries the teacher into its lineage."""

from __future__ import annotations

import pytest

from chat.models import ModelEndpoint
from tests.chat.fake_openai import FakeOpenAI
from training import job_services as services
from training.models import DatasetVersion
from training.services_datasets import DatasetOperationError, dataset_distill

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher_server():
    with FakeOpenAI() as fake:
        fake.answer_pieces = ["Loans above one million yuan ", "need the credit committee."]
        yield fake


def endpoint_for(fake, **fields):
    return ModelEndpoint.objects.create(name="Teacher", kind="openai", base_url=fake.base_url, model="deepseek-r1-teacher",
                                        **fields)


def test_a_teacher_endpoint_answers_the_prompts_and_the_lineage_records_it(ml, credit, teacher_server, settings, tmp_path):
    settings.TRAINING_OUTPUT_DIR = str(tmp_path)
    endpoint = endpoint_for(teacher_server)
    version = dataset_distill(actor=ml["ml_engineer"], department=credit, endpoint=endpoint, name="Distilled loans",
                              prompts=["Who approves large loans?", "  ", "大额贷款由谁审批？"], system_prompt="Be brief.")
    rows = list(version.rows.order_by("index"))
    assert [r.messages[1]["content"] for r in rows] == ["Who approves large loans?", "大额贷款由谁审批？"]
    assert all(r.messages[-1] == {"role": "assistant", "content": "Loans above one million yuan need the credit committee."}
               for r in rows)
    assert all(r.method == "distillation" and r.messages[0] == {"role": "system", "content": "Be brief."} for r in rows)
    # the teacher was really asked, over HTTP, with the prompts
    asked = [r["body"]["messages"][-1]["content"] for r in teacher_server.requests]
    assert asked == ["Who approves large loans?", "大额贷款由谁审批？"]
    assert all(r["body"]["model"] == "deepseek-r1-teacher" for r in teacher_server.requests)
    assert version.origin == "distillation" and version.report["teacher"]["model"] == "deepseek-r1-teacher"

    # the student's job: the teacher goes into the job and its lineage file's content
    job = services.fine_tuning_job_create(actor=ml["ml_engineer"], dataset_version=version, method="lora")
    assert job.teacher["model"] == "deepseek-r1-teacher" and job.teacher["base_url"] == teacher_server.base_url
    metadata = services.lineage(job=job, metrics={}, chat_template=None, train_rows=1, validation_rows=1)
    assert metadata["teacher"] == job.teacher


def test_a_failing_teacher_writes_nothing_and_says_why(ml, credit, teacher_server):
    teacher_server.mode = "http500"
    with pytest.raises(DatasetOperationError, match="The teacher model failed"):
        dataset_distill(actor=ml["ml_engineer"], department=credit, endpoint=endpoint_for(teacher_server),
                        prompts=["Who approves large loans?"])
    assert not DatasetVersion.objects.exists()
    with pytest.raises(DatasetOperationError, match="at least one prompt"):
        dataset_distill(actor=ml["ml_engineer"], department=credit, endpoint=None,
                        prompts=[" "])


def test_distillation_needs_the_right_to_add_datasets_in_the_department(ml, hr, teacher_server):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        dataset_distill(actor=ml["credit_employee"], department=hr, endpoint=endpoint_for(teacher_server), prompts=["x"])
    assert teacher_server.requests == []
