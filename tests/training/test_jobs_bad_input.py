"""Bad input to the jobs and evaluations API: a 400 with a clear message, never a 500 (found by an
audit: each test failed before its fix)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import login
from training import job_services as services
from training.models import FineTuningJob
from training.services_datasets import dataset_create, dataset_version_create

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


def qa(question, answer):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def test_an_evaluation_seed_beyond_the_database_column_is_a_400(ml, credit, people):
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="d")
    version, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload",
                                        payloads=[qa("q", "a"), qa("r", "b")])
    base = services.base_model_version_get_or_create(path="/nonexistent/base")
    client = api(ml["credit_admin"])
    for seed, status in ((2**40, 400), (2**31, 400), (2**31 - 1, 201)):
        response = client.post("/api/training/evaluations/", {
            "model_version": base.pk, "dataset_version": version.pk, "seed": seed}, format="json")
        assert response.status_code == status, (seed, response.content)
    schema = login(people["superuser"]).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    seed = schema["components"]["schemas"]["EvaluationCreateRequest"]["properties"]["seed"]
    assert seed["maximum"] == 2**31 - 1


def test_a_job_with_an_overflowing_hyperparameter_is_a_400(ml, credit):
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="d")
    version, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload",
                                        payloads=[qa("q", "a"), qa("r", "b")])
    client = api(ml["credit_admin"])
    for value in (b"1e400", b"-1e400", b"1" + b"0" * 400):
        for name in (b"n_epochs", b"learning_rate"):
            body = b'{"training_file": %d, "method": "lora", "model": "/nonexistent", "hyperparameters": {"%s": %s}}' % (
                version.pk, name, value)
            response = client.post("/api/training/fine_tuning/jobs/", body, content_type="application/json")
            assert response.status_code == 400, (name, value[:10], response.status_code)
            assert "Must be between" in response.content.decode(), response.content
    assert not FineTuningJob.objects.exists()
