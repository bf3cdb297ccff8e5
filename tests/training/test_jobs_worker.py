"""Fine-tuning end to end through a real Celery worker (queues default + gpu) over Redis, on the
demo model: learnability of LoRA and full fine-tuning, cancel, resume after SIGKILL at the exact
step, the lineage file, the local backend with the activated adapter."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

from django.utils import timezone
from pathlib import Path

import pytest
import redis

from core.services import work_reap
from llm.base import BackendError
from llm.local import LocalTransformersBackend, clear_cache, for_active_model
from tests.core.test_worker_integration import broker, worker_process
from training import job_services as services
from training.finetune.demo_model import ensure_demo_model
from training.models import Evaluation, FineTuningJob, FineTuningStatus

from .jobs_helpers import FULL_HP, LORA_HP, LORA_LEARN_HP, VALIDATION_FRACTION, facts_version, wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Each test needs about a minute of CPU on an idle 2-core machine; the limits leave room for a loaded one.
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(1200)]


@pytest.fixture
def redis_broker():
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()
    with broker(REDIS_URL, {}):
        yield


@pytest.fixture
def demo(settings, tmp_path):
    settings.TRAINING_OUTPUT_DIR = str(tmp_path / "training")
    path = ensure_demo_model()  # built once per checkout, cached under var/models
    settings.TRAINING_BASE_MODEL_PATH = str(path)
    return path


def worker():
    return worker_process({"BROKER_URL": REDIS_URL})




def finished(job: FineTuningJob, proc, timeout: float = 900) -> FineTuningJob:
    def done():
        fresh = FineTuningJob.objects.select_related("run_job", "validation_job").get(pk=job.pk)
        return fresh if fresh.is_finished else None

    return wait_for(done, proc, timeout, f"job {job} to finish")


def evaluated(evaluation: Evaluation, proc, timeout: float = 600) -> Evaluation:
    def done():
        fresh = Evaluation.objects.select_related("job").get(pk=evaluation.pk)
        return fresh if fresh.job.is_finished else None

    fresh = wait_for(done, proc, timeout, "the evaluation")
    assert fresh.job.status == "succeeded", fresh.job.error
    return fresh


def evaluate_on_trained_facts(actor, version_row, dataset_version, proc, **options) -> Evaluation:
    evaluation = services.evaluation_create(
        actor=actor, model_version=version_row, dataset_version=dataset_version, split="train", seed=42,
        validation_fraction=VALIDATION_FRACTION, options={"robustness": False, **options},
    )
    return evaluated(evaluation, proc)


def exact_match_on_trained_facts(actor, version_row, dataset_version, proc) -> float:
    return evaluate_on_trained_facts(actor, version_row, dataset_version, proc).metrics["exact_match"]


def metric_events(job: FineTuningJob) -> dict[int, dict]:
    return {e.step: {**e.data, "step": e.step} for e in job.events.filter(type="metrics").order_by("id") if "loss" in e.data}


def test_lora_job_learns_the_facts_events_checkpoints_lineage_and_the_chat_serves_the_activated_adapter(
        redis_broker, demo, ml, credit):
    actor = ml["superuser"]
    dataset_version = facts_version(actor, credit)
    base = services.base_model_version_get_or_create(path=str(demo))
    with worker() as proc:
        before = exact_match_on_trained_facts(actor, base, dataset_version, proc)
        job = services.fine_tuning_job_create(
            actor=actor, dataset_version=dataset_version, method="lora", hyperparameters=LORA_LEARN_HP,
            validation_fraction=VALIDATION_FRACTION, auto_evaluate=False,
        )
        job = finished(job, proc)
        assert job.status == FineTuningStatus.SUCCEEDED, job.error_message
        version = job.fine_tuned_model
        evaluation = evaluate_on_trained_facts(actor, version, dataset_version, proc, robustness=True)
    # learnability with the defaults for the demo model's size (lr 3e-3, r 16, alpha 32)
    assert job.hyperparameters["learning_rate"] == 3e-3 and job.hyperparameters["lora_r"] == 16
    assert before <= 0.2 and evaluation.metrics["exact_match"] >= 0.8, (before, evaluation.metrics["exact_match"])
    assert set(evaluation.metrics["robustness"]) == {"typo", "synonym", "shuffled_clauses", "noise", "traditional", "simplified"}
    assert evaluation.metrics["perplexity"] > 1 and len(evaluation.items) == 15

    # events: loss, eval_loss, learning rate, tokens/s and ETA; checkpoints listed and on disk
    events = metric_events(job)
    assert len(events) >= 10
    step, data = next(iter(events.items()))
    assert {"loss", "learning_rate", "tokens_per_s", "eta_s", "epoch"} <= set(data) and data["tokens_per_s"] > 0
    assert any("eval_loss" in e.data for e in job.events.filter(type="metrics"))
    assert job.checkpoints.exists() and all(Path(c.path, "optimizer.pt").exists() for c in job.checkpoints.all())

    # the lineage file next to the adapter
    metadata = json.loads(Path(version.adapter_path, "metadata.json").read_text())
    assert metadata["model_version"] == version.pk and metadata["job"] == job.openai_id and metadata["method"] == "lora"
    assert metadata["dataset_version"]["content_sha256"] == dataset_version.content_sha256
    assert metadata["base_model"] == {
        "path": str(demo), "config_sha256": hashlib.sha256((demo / "config.json").read_bytes()).hexdigest()}
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(version.adapter_path).chat_template
    assert metadata["chat_template"]["sha256"] == hashlib.sha256(template.encode()).hexdigest() == version.chat_template_sha256
    assert metadata["hyperparameters"] == job.hyperparameters
    assert len(metadata["code_version"]) == 40 and metadata["parent"] is None
    assert metadata["metrics"]["steps"] > 0 and metadata["metrics"]["target_modules"]

    # the chat's local backend: the activated adapter answers as the evaluation measured it; the
    # bare base model answers otherwise
    learned = next(item for item in evaluation.items if item["exact_match"] == 1)
    question, answer = learned["question"], learned["prediction"]
    messages = [{"role": "user", "content": question}]
    clear_cache()
    services.model_version_activate(actor=actor, version=version)
    backend = for_active_model()
    assert backend.version_id == version.pk
    streamed = "".join(delta.text for delta in backend.stream(messages, max_tokens=48))
    assert streamed.strip() == answer == backend.complete(messages, max_tokens=48).text
    plain = LocalTransformersBackend(str(demo)).complete(messages, max_tokens=48).text
    assert plain != answer
    # a stored template that differs from the model's is refused
    with pytest.raises(BackendError, match="differs from the one this version was trained with"):
        LocalTransformersBackend(str(demo), version.adapter_path, expected_template_sha256="0" * 64).complete(messages)
    services.model_version_activate(actor=actor, version=None, action="model_version_deactivate")
    assert for_active_model() is None


def test_full_fine_tuning_learns_the_facts_and_the_chat_answers_them(redis_broker, demo, ml, credit):
    actor = ml["superuser"]
    dataset_version = facts_version(actor, credit)
    base = services.base_model_version_get_or_create(path=str(demo))
    with worker() as proc:
        before = exact_match_on_trained_facts(actor, base, dataset_version, proc)
        job = services.fine_tuning_job_create(
            actor=actor, dataset_version=dataset_version, method="full", hyperparameters=FULL_HP,
            validation_fraction=VALIDATION_FRACTION, auto_evaluate=False,
        )
        job = finished(job, proc)
        assert job.status == FineTuningStatus.SUCCEEDED, job.error_message
        evaluation = evaluate_on_trained_facts(actor, job.fine_tuned_model, dataset_version, proc)
    after = evaluation.metrics["exact_match"]
    assert before <= 0.2 and after >= 0.8, (before, after)
    version = job.fine_tuned_model
    learned = next(item for item in evaluation.items if item["exact_match"] == 1)
    question, answer = learned["question"], learned["reference"]
    clear_cache()
    services.model_version_activate(actor=actor, version=version)
    assert for_active_model().complete([{"role": "user", "content": question}], max_tokens=24).text == answer
    assert version.kind == "full" and Path(version.weights_path, "model.safetensors").exists()
    assert json.loads(Path(version.weights_path, "metadata.json").read_text())["method"] == "full"


def test_cancel_is_graceful_and_keeps_the_last_checkpoint(redis_broker, demo, ml, credit):
    actor = ml["superuser"]
    dataset_version = facts_version(actor, credit)
    with worker() as proc:
        job = services.fine_tuning_job_create(
            actor=actor, dataset_version=dataset_version, method="lora",
            hyperparameters={**LORA_HP, "n_epochs": 200, "early_stopping_patience": 0}, validation_fraction=VALIDATION_FRACTION,
        )
        wait_for(lambda: job.events.filter(type="metrics", step__gte=3).exists(), proc, 600, "three steps")
        services.fine_tuning_job_cancel(actor=actor, job=job)
        job = finished(job, proc, timeout=300)
    assert job.status == FineTuningStatus.CANCELLED and job.fine_tuned_model is None
    last = job.checkpoints.first()
    assert last is not None and Path(last.path, "adapter_model.safetensors").exists()
    assert last.step == job.metrics["steps"] >= 3 and last.step < job.metrics["max_steps"]
    assert "Job cancelled at step" in job.events.last().message


def test_resume_after_sigkill_continues_at_the_exact_step_with_the_same_losses(redis_broker, demo, ml, credit):
    actor = ml["superuser"]
    dataset_version = facts_version(actor, credit)
    # enough steps after the checkpoint that the kill lands mid-run on an idle machine too
    hp = {**LORA_HP, "n_epochs": 30, "eval_every_steps": 4, "early_stopping_patience": 0, "save_total_limit": 3}
    create = lambda: services.fine_tuning_job_create(  # noqa: E731
        actor=actor, dataset_version=dataset_version, method="lora", hyperparameters=hp,
        validation_fraction=VALIDATION_FRACTION, auto_evaluate=False)
    with worker() as proc:
        reference = finished(create(), proc)
        assert reference.status == FineTuningStatus.SUCCEEDED, reference.error_message
        interrupted = create()
        wait_for(lambda: interrupted.checkpoints.filter(step__gte=8).exists()
                 and interrupted.events.filter(type="metrics", step__gte=9).exists(), proc, 600, "a checkpoint at step 8")
        proc.kill()  # SIGKILL: no cleanup, the job row still says running
        proc.wait()
    interrupted = FineTuningJob.objects.get(pk=interrupted.pk)
    assert interrupted.status == FineTuningStatus.RUNNING
    # the project's one reaper, as if its staleness limit had passed: not stuck running
    assert work_reap(now=timezone.now() + timedelta(hours=1), kinds=["job"])["job"]["failed"] >= 1
    interrupted = FineTuningJob.objects.get(pk=interrupted.pk)
    assert interrupted.status == FineTuningStatus.FAILED
    checkpoint = interrupted.checkpoints.first().step
    services.fine_tuning_job_resume(actor=actor, job=interrupted)
    with worker() as proc:
        interrupted = finished(interrupted, proc)
    assert interrupted.status == FineTuningStatus.SUCCEEDED, interrupted.error_message
    # The newest complete checkpoint on disk: the recorded one, or one the kill landed after saving
    # but before its row was written.
    resumed = [int(m.rsplit(" ", 1)[1]) for m in interrupted.events.values_list("message", flat=True)
               if m.startswith("Resumed from the checkpoint at step ")]
    assert len(resumed) == 1 and resumed[0] >= checkpoint, resumed
    checkpoint = resumed[0]
    expected, got = metric_events(reference), metric_events(interrupted)
    assert sorted(got) == sorted(expected)  # one point per step, none repeated, none missing
    assert got[checkpoint + 1]["loss"] == pytest.approx(expected[checkpoint + 1]["loss"], rel=1e-4)
    for step in expected:
        assert got[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-4), step
        assert got[step]["learning_rate"] == pytest.approx(expected[step]["learning_rate"], rel=1e-6), step
    assert interrupted.metrics["steps"] == reference.metrics["steps"]
