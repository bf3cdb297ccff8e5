"""Fine-tuning jobs, the registry and activation through the services and the API (no worker: the
validation job runs in this process through core's job_execute)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.test import APIClient

from core.models import AuditEntry, Job, JobStatus
from core.services import job_execute
from llm.base import active_model
from training import job_services as services
from training.models import (
    Evaluation,
    FineTuningJob,
    FineTuningStatus,
    ModelActivation,
    ModelVersion,
    ModelVersionKind,
)
from training.services_datasets import dataset_create, dataset_version_create

from .jobs_helpers import LORA_HP, facts_version


# Validation checks the configured base model (the demo model by default): build it first.
pytestmark = pytest.mark.usefixtures("demo_model_dir")


@pytest.fixture
def api(ml):
    def client(user):
        c = APIClient()
        c.force_authenticate(user)
        return c

    return client


@pytest.fixture
def version(ml, credit):
    return facts_version(ml["credit_admin"], credit)


def test_api_refuses_bad_hyperparameters_with_one_message_per_field_and_creates_nothing(api, ml, version):
    response = api(ml["credit_admin"]).post(
        "/api/training/fine_tuning/jobs/",
        {"training_file": version.pk, "method": "lora", "hyperparameters": {"learning_rate": -1, "lora_r": 0, "epochs": 3}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "learning_rate": ["Must be between 1e-08 and 1."],
        "lora_r": ["Must be between 1 and 1024."],
        "epochs": ["Unknown hyperparameter."],
    }
    assert FineTuningJob.objects.count() == 0 and Job.objects.count() == 0


def test_a_job_validates_its_files_then_queues_training_on_the_gpu_queue(api, ml, version):
    client = api(ml["credit_admin"])
    response = client.post("/api/training/fine_tuning/jobs/", {"training_file": version.pk, "method": "lora",
                                                              "hyperparameters": LORA_HP, "validation_fraction": 0.25}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["object"] == "fine_tuning.job" and body["status"] == "validating_files" and body["id"].startswith("ftjob-")
    assert body["hyperparameters"]["learning_rate"] == LORA_HP["learning_rate"]
    assert body["hyperparameters"]["target_modules"] == "auto" and body["hyperparameters"]["max_length"] == 1024
    job = FineTuningJob.objects.get()
    assert job.validation_job.queue == "default"
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.QUEUED and job.run_job.queue == "gpu" and job.run_job.kind == "training.fine_tune"
    assert "Files validated: 15 training and 5 validation examples" in job.events.values_list("message", flat=True)[1]
    assert client.get(f"/api/training/fine_tuning/jobs/{body['id']}/").json()["status"] == "queued"
    # another department's admin does not see it (404, same as missing)
    assert api(ml["hr_admin"]).get(f"/api/training/fine_tuning/jobs/{job.pk}/").status_code == 404
    assert api(ml["hr_admin"]).get("/api/training/fine_tuning/jobs/").json()["data"] == []
    assert api(ml["credit_employee"]).post(f"/api/training/fine_tuning/jobs/{job.pk}/cancel/").status_code in (403, 404)
    # cancelled before a worker picked it up: cancelled at once
    response = client.post(f"/api/training/fine_tuning/jobs/{job.pk}/cancel/")
    assert response.json()["status"] == "cancelled"
    assert AuditEntry.objects.filter(action="fine_tuning_job_cancel", object_id=str(job.pk)).exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"base_model_path": "/nonexistent/model"}, "The base model directory '/nonexistent/model' does not exist."),
        ({"hyperparameters": {"n_epochs": 5000}}, "Bad hyperparameters: n_epochs: Must be between 1 and 1000."),
    ],
)
def test_bad_input_fails_the_job_with_a_clear_message(ml, version, change, message):
    job = services.fine_tuning_job_create(actor=ml["credit_admin"], dataset_version=version, method="lora")
    FineTuningJob.objects.filter(pk=job.pk).update(**change)
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.FAILED and job.error_message == message and job.run_job is None
    assert job.validation_job.status == JobStatus.FAILED


def test_a_dataset_too_small_to_split_fails_the_job(ml, credit):
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="One row")
    one, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload", payloads=[
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}])
    job = services.fine_tuning_job_create(actor=ml["credit_admin"], dataset_version=one, method="full")
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.FAILED
    assert job.error_message.startswith("The dataset is too small to split: 1 row(s) is too few")


def test_the_reaper_fails_a_training_whose_worker_died(ml, version):
    from datetime import timedelta

    from django.utils import timezone

    from core.services import work_reap

    job = services.fine_tuning_job_create(actor=ml["credit_admin"], dataset_version=version, method="lora")
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    Job.objects.filter(pk=job.run_job_id).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    assert work_reap(kinds=["job"])["job"]["failed"] == 1
    job = FineTuningJob.objects.get(pk=job.pk)
    assert job.status == FineTuningStatus.FAILED and "stopped responding" in job.error_message
    old_run = job.run_job_id
    services.fine_tuning_job_resume(actor=ml["credit_admin"], job=job)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.QUEUED and job.run_job_id != old_run


def _version(name, kind=ModelVersionKind.ADAPTER, **kw):
    return ModelVersion.objects.create(name=name, kind=kind, base_model_path="/models/base", adapter_path=f"/a/{name}", **kw)


def _evaluate(version, dataset_version, **metrics):
    job = Job.objects.create(kind="training.evaluate", queue="gpu", status=JobStatus.SUCCEEDED)
    return Evaluation.objects.create(model_version=version, dataset_version=dataset_version, job=job, metrics=metrics)


def test_activation_gate_needs_evaluations_as_good_as_the_active_ones_unless_an_admin_gives_a_reason(ml, version):
    engineer, admin = ml["ml_engineer"], ml["superuser"]
    good, worse = _version("good", chat_template_sha256="a" * 64), _version("worse")
    _evaluate(good, version, exact_match=0.9)
    _evaluate(worse, version, exact_match=0.5)
    services.model_version_activate(actor=engineer, version=good)  # nothing active: passes
    assert active_model().version_id == good.pk and active_model().adapter_path == "/a/good"
    with pytest.raises(ValidationError, match="exact_match 0.500 < 0.900"):
        services.model_version_activate(actor=engineer, version=worse)
    with pytest.raises(PermissionDenied):  # an ML engineer is not an admin: cannot override
        services.model_version_activate(actor=engineer, version=worse, reason="trust me")
    with pytest.raises(PermissionDenied):
        services.model_version_activate(actor=ml["credit_employee"], version=good)
    assert active_model().version_id == good.pk
    services.model_version_activate(actor=admin, version=worse, reason="better on the new policy documents")
    assert active_model().version_id == worse.pk
    entry = AuditEntry.objects.get(action="model_version_activate_override")
    assert entry.actor == admin and entry.details["reason"] == "better on the new policy documents"
    assert entry.details["gate"]["passed"] is False and entry.details["previous_version_id"] == good.pk
    # one click back
    services.model_version_restore_previous(actor=engineer)
    assert active_model().version_id == good.pk
    assert AuditEntry.objects.filter(action="model_version_restore").count() == 1
    # deactivate: the chat falls back (resolver answers None)
    services.model_version_activate(actor=engineer, version=None, action="model_version_deactivate")
    assert active_model() is None
    assert list(ModelActivation.objects.values_list("version__name", flat=True)) == [None, "good", "worse", "good"]


def test_a_version_without_evaluations_is_refused_and_the_api_answers_409(api, ml, version):
    good, fresh = _version("good"), _version("fresh")
    _evaluate(good, version, exact_match=0.9)
    services.model_version_activate(actor=ml["ml_engineer"], version=good)
    # model versions are visible through their job; these have none: use an admin
    response = api(ml["superuser"]).post(f"/api/training/models/{fresh.pk}/activate/", {}, format="json")
    assert response.status_code == 409 and "no finished evaluation" in response.json()["detail"]
    response = api(ml["superuser"]).post(f"/api/training/models/{fresh.pk}/activate/", {"reason": "smoke test"}, format="json")
    assert response.status_code == 200 and response.json()["active"] == fresh.pk
