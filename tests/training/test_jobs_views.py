"""The fine-tuning pages: list and create, job detail with its chart data, registry, evaluation."""

import json
import re

import pytest

from core.models import Job, JobStatus
from training import job_services as services
from training.models import Evaluation, FineTuningJob

from .jobs_helpers import facts_version


def json_script(page: str, element_id: str):
    return json.loads(re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S).group(1))


@pytest.fixture
def version(ml, credit):
    return facts_version(ml["credit_admin"], credit)


def test_create_a_job_from_the_page_and_watch_it(client_for, ml, version):
    client = client_for(ml["credit_admin"])
    page = client.get("/training/jobs/")
    assert page.status_code == 200 and b"job-create-form" in page.content
    response = client.post("/training/jobs/", {"dataset_version": version.pk, "method": "lora", "learning_rate": "7",
                                               "validation_fraction": "0.2"})
    assert response.status_code == 200 and "Must be between 1e-08 and 1." in response.content.decode()
    assert FineTuningJob.objects.count() == 0
    response = client.post("/training/jobs/", {"dataset_version": version.pk, "method": "lora", "n_epochs": "2",
                                               "validation_fraction": "0.2"})
    job = FineTuningJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/jobs/{job.pk}/"
    services.event_add(job=job, type="metrics", message="step 1", step=1, loss=2.5, learning_rate=1e-4, tokens_per_s=10.0, eta_s=3.0)
    services.event_add(job=job, type="metrics", message="step 2", step=2, eval_loss=2.4)
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    assert "Validating files" in page and 'id="loss-chart"' in page and "<script>" not in page
    series = json_script(page, "loss-series")
    assert series == {"steps": [1], "loss": [2.5], "eval_steps": [2], "eval_loss": [2.4]}
    events = client.get(f"/api/training/fine_tuning/jobs/{job.pk}/events/?after=0").json()
    assert [e["message"] for e in events["data"]][-2:] == ["step 1", "step 2"] and events["status"] == "validating_files"
    # Chinese page too
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "正在验证文件" in client.get(f"/training/jobs/{job.pk}/").content.decode()
    # another department sees nothing
    assert client_for(ml["hr_admin"]).get(f"/training/jobs/{job.pk}/").status_code == 404
    assert client_for(ml["credit_employee"]).get("/training/jobs/").status_code == 403


def test_registry_and_evaluation_pages(client_for, ml, version):
    base = services.base_model_version_get_or_create(path="/models/base")
    job = Job.objects.create(kind="training.evaluate", queue="gpu", status=JobStatus.SUCCEEDED)
    evaluation = Evaluation.objects.create(model_version=base, dataset_version=version, job=job,
                                           metrics={"exact_match": 0.25, "perplexity": 12.0, "robustness": {"typo": 0.2}},
                                           items=[{"question": "q<script>", "reference": "r", "prediction": "p", "exact_match": 0, "token_f1": 0}])
    client = client_for(ml["ml_engineer"])
    page = client.get("/training/models/").content.decode()
    assert "base: base" in page and "EM 0.25" in page
    page = client.get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert 'id="evaluation-chart"' in page and "q&lt;script&gt;" in page and "0.250" in page
    chart = json_script(page, "evaluation-chart-data")
    assert chart["series"] == {"this: base: base": [0.25, None, None, None, None, None, None]}
    assert 'id="rag-answers"' not in page
    # the RAG setting's answers (asked through the chat pipeline) are listed, escaped
    evaluation.metrics.update({"rag_answer_accuracy": 0.5, "rag_citation_accuracy": 1.0, "rag_abstention": 1.0,
                               "rag_assistant": "Company assistant", "rag_samples": [
                                   {"question": "Who <b>approves</b>?", "reference": "The committee.", "answer": "The committee [1].",
                                    "citations": [7], "abstained": False},
                                   {"question": "Salary bands?", "reference": "-", "answer": "", "citations": [], "abstained": True}]})
    evaluation.save()
    page = client.get(f"/training/evaluations/{evaluation.pk}/").content.decode()
    assert 'id="rag-answers"' in page and "Who &lt;b&gt;approves&lt;/b&gt;?" in page and "abstained (no knowledge)" in page
    assert json_script(page, "evaluation-chart-data")["series"]["this: base: base"][4:] == [0.5, 1.0, 1.0]
    response = client.post(f"/training/models/{base.pk}/evaluate/", {"dataset_version": version.pk, "split": "train"})
    assert response.status_code == 302 and Evaluation.objects.count() == 2


def test_the_jobs_api_answers_bad_ids_and_parameters_with_4xx(client_for, ml, version):
    """Found by fuzzing the OpenAPI schema (schemathesis): these were 500s."""
    client = client_for(ml["credit_admin"])
    job = services.fine_tuning_job_create(actor=ml["credit_admin"], dataset_version=version, method="lora",
                                          validation_fraction=0.2, hyperparameters={"n_epochs": 1})
    services.event_add(job=job, type="metrics", message="step 1", step=1, loss=2.5)
    for bad in ("null,null", "ftjob-not-a-uuid", "1"):
        for suffix in ("", "events/", "checkpoints/"):
            assert client.get(f"/api/training/fine_tuning/jobs/{bad}/{suffix}").status_code == 404, (bad, suffix)
    assert client.get(f"/api/training/fine_tuning/jobs/{job.openai_id}/").json()["uuid"] == str(job.pk)
    for query in ("limit=null", "limit=1.5", "limit=abc"):
        response = client.get(f"/api/training/fine_tuning/jobs/?{query}")
        assert response.status_code == 400 and response.json() == {"limit": "An integer is required."}, query
    for query, count in (("limit=-5", 1), ("limit=0", 1), ("limit=100000", 1), ("", 1)):
        response = client.get(f"/api/training/fine_tuning/jobs/?{query}")
        assert response.status_code == 200 and len(response.json()["data"]) == count, query
    events = f"/api/training/fine_tuning/jobs/{job.pk}/events/"
    assert client.get(f"{events}?after=x").status_code == 400
    assert client.get(f"{events}?after={'9' * 30}").json()["data"] == []
    assert "step 1" in [e["message"] for e in client.get(f"{events}?after=-3").json()["data"]]
