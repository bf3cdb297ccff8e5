"""The ML engineer's journey in real Chromium, on the demo model, through a real Celery worker (queues
default + gpu): upload a dataset → start a LoRA job from the jobs page → watch its events and loss
chart → evaluate the new version → activate it (the gate) → ask in the chat, answered by the local
backend bound to the active version. The same pages are then walked in Simplified Chinese; the page
fixture fails the test on any console error or uncaught page error in either language."""

from __future__ import annotations

import json

import pytest
import redis
from playwright.sync_api import expect

from chat.models import Message
from chat.services import endpoint_save
from tests.browser.conftest import login, screenshot
from tests.chat.conftest import company_assistant, kb_corpus  # noqa: F401 - fixtures
from tests.core.test_worker_integration import broker, worker_process
from tests.training.conftest import ml  # noqa: F401 - fixture
from tests.training.facts import fact_rows
from tests.training.jobs_helpers import wait_for
from tests.training.test_jobs_worker import REDIS_URL
from training.finetune.demo_model import ensure_demo_model
from training.models import DatasetVersion, Evaluation, FineTuningJob, FineTuningStatus, ModelActivation

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(1200)]

FACTS_JSONL = "\n".join(json.dumps(r, ensure_ascii=False) for r in fact_rows(2)).encode()


@pytest.fixture(autouse=True)
def _patient(page):
    # Training and evaluation run on the shared 2-core machine: the pages wait for a worker.
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(120_000)
    expect.set_options(timeout=60_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def demo(settings, tmp_path):
    settings.TRAINING_OUTPUT_DIR = str(tmp_path / "training")
    path = ensure_demo_model()  # built once per checkout, cached under var/models
    settings.TRAINING_BASE_MODEL_PATH = str(path)
    settings.TRAINING_TOKENIZER_PATH = str(path)
    return path


@pytest.fixture
def gpu_worker(demo):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    with broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL}) as proc:
        yield proc


def wait_until(predicate, proc, timeout: float, what: str):
    return wait_for(predicate, proc, timeout, what, interval=1)


def test_upload_train_watch_evaluate_activate_and_chat(page, ml, credit, kb_corpus, company_assistant, gpu_worker):  # noqa: F811
    engineer = ml["ml_engineer"]
    # The company assistant answers with the active fine-tuned version (an admin's setting).
    company_assistant.endpoint = endpoint_save(actor=ml["superuser"], name="fine-tuned", kind="finetuned", model="active")
    company_assistant.save()
    login(page, engineer)

    # 1. Upload the dataset from the datasets page.
    page.goto("/training/")
    page.click("#datasets-tile")
    page.fill("#id_name", "Demo facts")
    page.select_option("#id_department", str(credit.pk))
    page.set_input_files("#id_file", files=[{"name": "facts.jsonl", "mimeType": "application/json", "buffer": FACTS_JSONL}])
    with page.expect_navigation():
        page.click("#dataset-upload-form button[type=submit]")
    assert page.url.endswith("/v1/")
    dataset_version = DatasetVersion.objects.get(dataset__name="Demo facts")
    assert dataset_version.row_count == 20

    # 2. Start a LoRA job from the jobs page (few steps: 15 training rows × 3 epochs, batch 4).
    page.goto("/training/jobs/")
    page.select_option("#id_dataset_version", str(dataset_version.pk))
    page.select_option("#id_method", "lora")
    page.fill("#id_n_epochs", "3")
    page.fill("#id_batch_size", "4")
    page.fill("#id_early_stopping_patience", "0")
    page.fill("#id_validation_fraction", "0.25")
    with page.expect_navigation():
        page.click("#job-create-form button[type=submit]")
    job = FineTuningJob.objects.get()
    assert f"/training/jobs/{job.pk}/" in page.url

    # 3. Watch: the page polls the events while the job runs, then reloads itself when it ends.
    events = page.locator("#job-events li")
    expect(events.first).to_be_visible()
    wait_until(lambda: FineTuningJob.objects.get(pk=job.pk).is_finished, gpu_worker, 900, "the job to finish")
    expect(page.locator("#job-summary")).to_have_attribute("data-status", "succeeded", timeout=120_000)
    job = FineTuningJob.objects.get(pk=job.pk)
    assert job.status == FineTuningStatus.SUCCEEDED, job.error_message
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('loss-chart'))")
    points = page.evaluate("() => Chart.getChart(document.getElementById('loss-chart')).data.datasets[0].data.length")
    assert points == job.events.filter(type="metrics", data__has_key="loss").count() >= 10
    assert events.count() == job.events.count()
    assert any("Job succeeded" in t for t in events.all_inner_texts())
    version = job.fine_tuned_model
    expect(page.locator("#job-summary")).to_contain_text(version.name)
    screenshot(page, "en-training-job")

    # 4. Evaluate the new version on its training file's validation split, from the models page.
    page.goto("/training/models/")
    row = page.locator(f'#model-versions tr[data-version="{version.pk}"]')
    row.locator("select[name=dataset_version]").select_option(str(dataset_version.pk))
    row.locator("select[name=split]").select_option("validation")
    with page.expect_navigation():
        row.get_by_role("button", name="Evaluate").click()
    evaluation = Evaluation.objects.filter(model_version=version).order_by("-pk").first()
    assert f"/training/evaluations/{evaluation.pk}/" in page.url
    # the page reloads itself every 3 s until the evaluation job has finished
    wait_until(lambda: Evaluation.objects.select_related("job").get(pk=evaluation.pk).job.is_finished,
               gpu_worker, 600, "the evaluation")
    expect(page.locator("#evaluation-status")).to_have_text("succeeded", timeout=30_000)
    page.wait_for_load_state("load")
    this = page.locator('#evaluation-comparison tr[data-role="this"]')
    expect(this).to_contain_text(version.name)
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('evaluation-chart'))")
    # the job's own held-out rows: 5 of 20 at the validation fraction the job was started with
    assert page.locator("#evaluation-items tbody tr").count() == 5
    screenshot(page, "en-training-evaluation")

    # 5. Activate it: the gate passes (no version is active to compare with); the registry says so.
    page.goto("/training/models/")
    with page.expect_navigation():
        page.locator(f'#model-versions tr[data-version="{version.pk}"]').get_by_role("button", name="Activate").click()
    expect(page.locator("#active-model")).to_contain_text(version.name)
    activation = ModelActivation.objects.order_by("-pk").first()
    assert activation.version == version and activation.actor == engineer and activation.gate["passed"]

    # 6. Ask in the chat: the local backend bound to the active version answers.
    page.goto("/chat/")
    page.fill("#question", "Who approves loan applications above one million yuan?")
    page.click("#send")
    answer = page.locator("article.turn.assistant").last
    message = wait_until(
        lambda: Message.objects.filter(role="assistant", status="done", conversation__user=engineer).first(),
        gpu_worker, 300, "the chat answer")
    assert message.backend == f"finetuned:{version.pk}", message.backend
    assert message.content.strip() and not message.extractive
    expect(answer.locator(".answer-body")).to_contain_text(message.content.strip()[:20])

    # 7. The same pages in Simplified Chinese, without a JavaScript error.
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    page.goto(f"/training/jobs/{job.pk}/")
    expect(page.locator("h1")).to_contain_text("微调任务")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('loss-chart'))")
    screenshot(page, "zh-training-job")
    page.goto(f"/training/evaluations/{evaluation.pk}/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('evaluation-chart'))")
    screenshot(page, "zh-training-evaluation")
    page.goto("/training/models/")
    expect(page.locator("#active-model")).to_contain_text("当前启用版本")
    page.goto("/training/jobs/")
    screenshot(page, "zh-training-jobs")
    page.goto("/training/datasets/")
    page.goto("/training/datasets/distill/")
    expect(page.locator("h1")).to_contain_text("从教师模型蒸馏")
    page.goto(f"/training/datasets/{dataset_version.dataset_id}/v1/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('token-length-histogram'))")
    screenshot(page, "zh-training-dataset-version")
    page.goto("/chat/")
    page.fill("#question", "超过一百万元的贷款由谁审批？")
    page.click("#send")
    wait_until(lambda: Message.objects.filter(role="assistant", status="done", conversation__user=engineer).count() >= 2,
               gpu_worker, 300, "the second chat answer")
    expect(page.locator("article.turn.assistant").last.locator(".answer-body")).not_to_be_empty()
