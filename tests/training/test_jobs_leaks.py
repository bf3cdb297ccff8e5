"""Jobs, evaluations and the model registry show nothing of knowledge or datasets the viewer may not
see (found by an audit: each test failed before its fix)."""

from __future__ import annotations

import importlib

import pytest
from rest_framework.test import APIClient

from tests.chat.conftest import company_assistant, kb_corpus  # noqa: F401  (fixtures)
from tests.conftest import login
from training import job_services as services
from training.models import Evaluation, FineTuningJob, ModelActivation, ModelVersion
from training.services_datasets import dataset_create, dataset_version_create

pytestmark = pytest.mark.django_db

LEAVE_Q = "How many days of annual leave do employees receive, and what are the salary bands?"


def api(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


def qa(question, answer, **extra):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], **extra}


def credit_model(ml, credit):
    """A version trained by a Credit job on a Credit upload (Credit's admin sees the job)."""
    upload = dataset_create(actor=ml["credit_admin"], department=credit, name="Credit upload")
    train, _ = dataset_version_create(actor=ml["credit_admin"], dataset=upload, origin="upload", payloads=[qa("q", "a")])
    job = FineTuningJob.objects.create(department=credit, dataset_version=train, base_model_path="/x", method="lora",
                                       created_by=ml["credit_admin"])
    model = ModelVersion.objects.create(name="credit-lora", kind="adapter", base_model_path="/x", job=job)
    FineTuningJob.objects.filter(pk=job.pk).update(fine_tuned_model=model)
    return job, model


def hidden_hr_version(people, hr, kb_corpus):
    """A dataset version of HR knowledge: Credit's admin and the ML engineer (Credit) may not read it."""
    hidden = dataset_create(actor=people["superuser"], department=hr, name="HR salary bands QA")
    version, _ = dataset_version_create(actor=people["superuser"], dataset=hidden, origin="knowledge",
                                        payloads=[qa("What is band 7 pay?", "90k")],
                                        knowledge_base_ids=[kb_corpus["hr_kb"].pk])
    return version


def hidden_hr_model(people, hr, kb_corpus):
    """A model version trained (by the company admin) on HR knowledge."""
    version = hidden_hr_version(people, hr, kb_corpus)
    job = FineTuningJob.objects.create(department=hr, dataset_version=version, base_model_path="/x", method="lora",
                                       created_by=people["superuser"])
    model = ModelVersion.objects.create(name="hr-bands-lora", kind="adapter", base_model_path="/x", job=job,
                                        metadata={"dataset_version": {"id": version.pk, "rows": 1}})
    return job, model


def test_rag_samples_are_shown_only_to_who_may_read_the_knowledge_they_quote(ml, people, credit, kb_corpus,
                                                                             company_assistant, monkeypatch):
    """The company admin evaluates in the RAG setting on a Credit upload: retrieval runs as the admin and
    the samples quote HR's handbook. Credit's admin sees the evaluation's metrics, not the samples."""
    import llm.local
    from llm.extractive import ExtractiveBackend
    from training.evaluation import _rag, _rows

    monkeypatch.setattr(llm.local, "get_backend", lambda model: ExtractiveBackend(None))  # quotes its context
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="Credit questions")
    version, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload",
                                        payloads=[qa(LEAVE_Q, "Ask HR.")])
    base = services.base_model_version_get_or_create(path="/nonexistent/base")
    response = api(people["superuser"]).post("/api/training/evaluations/", {
        "model_version": base.pk, "dataset_version": version.pk, "split": "all", "rag": True, "robustness": False},
        format="json")
    assert response.status_code == 201, response.content
    evaluation = Evaluation.objects.get(pk=response.json()["id"])
    metrics = _rag(evaluation, _rows(evaluation), None)
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics=metrics)
    assert "twenty days" in str(metrics["rag_samples"]).lower()
    assert kb_corpus["hr_kb"] in evaluation.rag_knowledge_bases.all()  # every knowledge base retrieved from

    viewer = ml["credit_admin"]
    page = login(viewer).get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert "twenty days" not in page.lower() and 'id="rag-samples-withheld"' in page
    assert "Company assistant" in page  # the rest of the RAG section is still shown
    for url in (f"/api/training/evaluations/{evaluation.pk}/", "/api/training/evaluations/"):
        body = api(viewer).get(url).content.decode()
        assert "twenty days" not in body.lower() and '"rag_samples_withheld":true' in body.replace(" ", ""), url
    # the author (who may read HR's handbook) still sees them
    page = login(people["superuser"]).get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert "twenty days" in page.lower() and 'id="rag-samples-withheld"' not in page
    body = api(people["superuser"]).get(f"/api/training/evaluations/{evaluation.pk}/").json()
    assert body["metrics"]["rag_samples"] and "rag_samples_withheld" not in body["metrics"]


def test_rag_samples_stored_before_their_knowledge_was_recorded_are_withheld(ml, people, credit, kb_corpus):
    """The migration records every knowledge base for older evaluations with samples (fail closed)."""
    from django.apps import apps

    migration = importlib.import_module("training.migrations.0006_evaluation_rag_knowledge_bases")
    base = services.base_model_version_get_or_create(path="/nonexistent/base")
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="Credit questions")
    version, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, origin="upload", payloads=[qa("q", "a")])
    old = Evaluation.objects.create(model_version=base, dataset_version=version, metrics={
        "rag_answer_accuracy": 1.0, "rag_assistant": "A", "rag_samples": [{"question": "q", "answer": "twenty days"}]})
    closed_book = Evaluation.objects.create(model_version=base, dataset_version=version, metrics={"exact_match": 1.0})
    migration.record_unknown_sources(apps, None)
    assert set(old.rag_knowledge_bases.all()) == {kb_corpus["credit_kb"], kb_corpus["hr_kb"]}
    assert not closed_book.rag_knowledge_bases.exists()
    assert "twenty days" not in login(ml["credit_admin"]).get(f"/training/evaluations/{old.pk}/").content.decode()
    assert "twenty days" in login(people["superuser"]).get(f"/training/evaluations/{old.pk}/").content.decode()


def test_a_trained_version_is_hidden_from_whoever_cannot_see_its_job(ml, people, credit, hr, kb_corpus):
    job, model = hidden_hr_model(people, hr, kb_corpus)
    engineer = ml["ml_engineer"]  # global training, but may not read HR's knowledge
    client = api(engineer)
    assert client.get(f"/api/training/fine_tuning/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/api/training/models/{model.pk}/").status_code == 404
    assert model.pk not in [m["id"] for m in client.get("/api/training/models/").json()["results"]]
    assert "hr-bands-lora" not in login(engineer).get("/training/models/").content.decode()
    # nor usable: evaluate, continue from, activate
    mine = dataset_create(actor=engineer, department=credit, name="mine")
    mine_v, _ = dataset_version_create(actor=engineer, dataset=mine, origin="upload", payloads=[qa("q", "a"), qa("r", "b")])
    response = client.post("/api/training/evaluations/", {"model_version": model.pk, "dataset_version": mine_v.pk},
                           format="json")
    assert response.status_code == 404
    response = client.post("/api/training/fine_tuning/jobs/", {"training_file": mine_v.pk, "method": "lora",
                                                               "model": "/nonexistent", "parent_model_version": model.pk},
                           format="json")
    assert response.status_code == 404
    assert client.post(f"/api/training/models/{model.pk}/activate/", {"reason": "x"}, format="json").status_code == 404
    with pytest.raises(services.PermissionDenied):
        services.model_version_activate(actor=engineer, version=model, reason="x")
    assert not ModelActivation.objects.exists()
    # restoring a previous version the engineer may not see is refused too
    services.model_version_activate(actor=people["superuser"], version=model, reason="x")
    services.model_version_activate(actor=people["superuser"], version=None, action="model_version_deactivate")
    assert client.post("/api/training/models/restore_previous/").status_code == 403
    assert ModelActivation.objects.count() == 2
    # who may see the job sees the version; base models and job-less versions as before
    assert api(people["superuser"]).get(f"/api/training/models/{model.pk}/").status_code == 200
    base = services.base_model_version_get_or_create(path="/nonexistent/base")
    orphan = ModelVersion.objects.create(name="imported", kind="full", base_model_path="/x", weights_path="/y")
    assert client.get(f"/api/training/models/{base.pk}/").status_code == 200
    assert client.get(f"/api/training/models/{orphan.pk}/").status_code == 200
    assert api(ml["credit_admin"]).get(f"/api/training/models/{orphan.pk}/").status_code == 404


def test_the_job_page_and_the_registry_list_only_evaluations_the_viewer_may_see(ml, people, credit, hr, kb_corpus):
    job, model = credit_model(ml, credit)
    hidden_v = hidden_hr_version(people, hr, kb_corpus)
    hidden_eval = Evaluation.objects.create(model_version=model, dataset_version=hidden_v, metrics={"exact_match": 0.987654})
    shown = Evaluation.objects.create(model_version=model, dataset_version=job.dataset_version, metrics={"exact_match": 0.5})
    viewer = login(ml["credit_admin"])
    assert viewer.get(f"/training/datasets/{hidden_v.dataset_id}/").status_code == 404
    page = viewer.get(f"/training/jobs/{job.pk}/").content.decode()
    assert "HR salary bands QA" not in page and f"/training/evaluations/{shown.pk}/" in page
    registry = viewer.get("/training/models/").content.decode()
    assert f"/training/evaluations/{hidden_eval.pk}/" not in registry and "EM 0.99" not in registry
    assert f"/training/evaluations/{shown.pk}/" in registry and "EM 0.50" in registry
    # the company admin sees both
    assert "EM 0.99" in login(people["superuser"]).get("/training/models/").content.decode()


def test_the_comparison_table_takes_only_evaluations_the_viewer_may_see(ml, people, credit, hr, kb_corpus):
    """The 'active version' row of an evaluation's comparison: not the hidden HR version's evaluation."""
    from core.models import Job, JobStatus

    _job, model = credit_model(ml, credit)
    _hr_job, hr_model = hidden_hr_model(people, hr, kb_corpus)
    dataset_version = _job.dataset_version

    def succeeded(version, score):
        done = Job.objects.create(kind="training.evaluate", queue="gpu", status=JobStatus.SUCCEEDED)
        return Evaluation.objects.create(model_version=version, dataset_version=dataset_version, split="validation",
                                         job=done, metrics={"exact_match": score})

    mine = succeeded(model, 0.5)
    succeeded(hr_model, 0.777)
    services.model_version_activate(actor=people["superuser"], version=hr_model, reason="x")
    page = login(ml["credit_admin"]).get(f"/training/evaluations/{mine.pk}/").content.decode()
    assert "hr-bands-lora" not in page and "0.777" not in page and 'data-role="active"' not in page
    page = login(people["superuser"]).get(f"/training/evaluations/{mine.pk}/").content.decode()
    assert 'data-role="active"' in page and "0.777" in page


def test_the_activation_history_names_only_versions_the_viewer_may_see(ml, people, credit, hr, kb_corpus):
    _job, model = credit_model(ml, credit)
    _hr_job, hr_model = hidden_hr_model(people, hr, kb_corpus)
    services.model_version_activate(actor=people["superuser"], version=model, reason="credit first")
    services.model_version_activate(actor=people["superuser"], version=hr_model, reason="hr wins")
    services.model_version_activate(actor=people["superuser"], version=model, reason="back to credit")

    def history(user):
        page = login(user).get("/training/models/").content.decode()
        return page[page.index('id="activation-history"'):]

    shown = history(ml["credit_admin"])
    assert "credit first" in shown and "hr wins" not in shown and "back to credit" not in shown
    assert "hr-bands-lora" not in shown
    assert "hr wins" in history(people["superuser"]) and "back to credit" in history(people["superuser"])


def test_a_parent_version_the_viewer_may_not_see_is_not_named(ml, people, credit, hr, kb_corpus):
    """A Credit job continued (by the company admin) from a version trained on HR knowledge: Credit's
    admin sees the job and its model, not the parent's name or id, on the page or through the API."""
    _hr_job, hr_model = hidden_hr_model(people, hr, kb_corpus)
    job, child = credit_model(ml, credit)
    FineTuningJob.objects.filter(pk=job.pk).update(parent_version=hr_model)
    ModelVersion.objects.filter(pk=child.pk).update(
        parent=hr_model, metadata={"parent": {"model_version": hr_model.pk, "name": hr_model.name, "kind": "adapter"}})
    viewer = ml["credit_admin"]
    page = login(viewer).get(f"/training/jobs/{job.pk}/").content.decode()
    assert "hr-bands-lora" not in page and "a model version you may not see" in page
    client = api(viewer)
    response = client.get(f"/api/training/fine_tuning/jobs/{job.pk}/")
    assert response.status_code == 200 and response.json()["parent_model_version"] is None
    listed = client.get("/api/training/fine_tuning/jobs/").content.decode()
    assert f'"parent_model_version":{hr_model.pk}' not in listed.replace(" ", "")
    response = client.get(f"/api/training/models/{child.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["parent"] is None and body["metadata"]["parent"] is None and "hr-bands-lora" not in response.content.decode()
    # whoever may see the parent sees it
    admin = people["superuser"]
    assert "hr-bands-lora" in login(admin).get(f"/training/jobs/{job.pk}/").content.decode()
    body = api(admin).get(f"/api/training/models/{child.pk}/").json()
    assert body["parent"] == hr_model.pk and body["metadata"]["parent"]["name"] == "hr-bands-lora"
    assert api(admin).get(f"/api/training/fine_tuning/jobs/{job.pk}/").json()["parent_model_version"] == hr_model.pk


def test_the_activation_gate_does_not_quote_evaluations_the_activator_may_not_see(ml, people, credit, hr, kb_corpus):
    """The ML engineer (global training, no HR knowledge) activates a Credit version: the gate compares
    it with the active one on a Credit dataset and on an HR one. The refusal names the HR figures only
    as a count; the company admin reads them."""
    from core.models import Job, JobStatus

    active_job, active = credit_model(ml, credit)
    candidate = ModelVersion.objects.create(name="credit-lora-2", kind="adapter", base_model_path="/x", job=active_job)
    hidden_v = hidden_hr_version(people, hr, kb_corpus)

    def succeeded(version, dataset_version, score):
        done = Job.objects.create(kind="training.evaluate", queue="gpu", status=JobStatus.SUCCEEDED)
        return Evaluation.objects.create(model_version=version, dataset_version=dataset_version, split="validation",
                                         job=done, metrics={"exact_match": score})

    succeeded(active, active_job.dataset_version, 0.5)
    succeeded(candidate, active_job.dataset_version, 0.6)
    succeeded(active, hidden_v, 0.987)
    succeeded(candidate, hidden_v, 0.123)
    services.model_version_activate(actor=people["superuser"], version=active, reason="first")
    engineer = ml["ml_engineer"]
    with pytest.raises(services.ActivationRefused) as refused:
        services.model_version_activate(actor=engineer, version=candidate)
    message = refused.value.messages[0]
    assert "0.123" not in message and "0.987" not in message
    assert "1 metric on an evaluation you may not see" in message
    response = api(engineer).post(f"/api/training/models/{candidate.pk}/activate/", {}, format="json")
    assert response.status_code == 409 and "0.987" not in response.content.decode()
    page = login(engineer).post(f"/training/models/{candidate.pk}/activate/", follow=True).content.decode()
    assert "0.987" not in page and "may not see" in page
    with pytest.raises(services.ActivationRefused) as refused:
        services.model_version_activate(actor=people["superuser"], version=candidate)
    assert "exact_match 0.123 < 0.987" in refused.value.messages[0]
    # when the gate passes, the response's gate leaves out the comparison the engineer may not see
    succeeded(candidate, hidden_v, 0.99)
    response = api(engineer).post(f"/api/training/models/{candidate.pk}/activate/", {}, format="json")
    assert response.status_code == 200, response.content
    gate = response.json()["gate"]
    assert gate["passed"] and gate["hidden"] == 1 and len(gate["comparisons"]) == 1
    assert "0.99" not in response.content.decode() and "0.987" not in response.content.decode()
    # the activation keeps the whole gate
    assert len(ModelActivation.objects.order_by("-id").first().gate["comparisons"]) == 2
