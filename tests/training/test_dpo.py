"""DPO on preference pairs (training/finetune/dpo.py) on the demo model: the job's runner with the
DPO loss lowers the loss and widens the margin between the chosen and the rejected answer; a DPO job
validates its preference pairs and refuses a dataset without any."""

from __future__ import annotations

import pytest

from core.services import job_execute
from tests.training.facts import FACTS
from training import job_services as services
from training.finetune import hyperparameters as hp_rules
from training.finetune.runner import Hooks, RunSpec, run_fine_tune
from training.models import FineTuningStatus
from training.services_datasets import dataset_create, dataset_version_create


def preference_pairs() -> list[dict]:
    """Each fact's question; chosen: its answer; rejected: the next fact's answer (fluent but wrong)."""
    pairs = []
    for i, (question, _other, answer) in enumerate(FACTS):
        wrong = FACTS[(i + 1) % len(FACTS)][2]
        pairs.append({"prompt": [{"role": "user", "content": question}],
                      "chosen": [{"role": "assistant", "content": answer}],
                      "rejected": [{"role": "assistant", "content": wrong}]})
    return pairs


@pytest.mark.timeout(900)
def test_dpo_lowers_the_loss_and_widens_the_chosen_margin_on_the_demo_model(demo_model_dir, tmp_path):
    pairs = preference_pairs()
    hp, errors = hp_rules.validate("dpo", {
        "learning_rate": 2e-3, "n_epochs": 8, "batch_size": 4, "warmup_ratio": 0.1, "early_stopping_patience": 0,
        "save_total_limit": 1, "seed": 42,
    }, hidden_size=128)
    assert not errors and hp["dpo_beta"] == 0.1 and hp["lora_r"] == 16
    losses = []
    result = run_fine_tune(
        RunSpec(base_model_path=str(demo_model_dir), output_dir=str(tmp_path / "dpo"), method="dpo", hyperparameters=hp,
                train=[], validation=[], train_pairs=pairs[:8], validation_pairs=pairs[8:]),
        Hooks(on_event=lambda event: losses.append(event["loss"]) if "loss" in event else None),
    )
    assert result.status == "succeeded" and (tmp_path / "dpo" / "model" / "adapter_model.safetensors").exists()
    # DPO's loss starts at log 2 (policy = reference) and goes down
    assert len(losses) >= 10 and losses[0] == pytest.approx(0.6931, abs=0.02), losses[:3]
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses
    # the chosen answer's log-probability margin over the rejected one grows
    before, after = result.metrics["chosen_margin_before"], result.metrics["chosen_margin_after"]
    assert after > before + 5, (before, after)


@pytest.mark.timeout(900)
def test_dpo_on_a_parent_adapter_measures_against_that_parent(demo_model_dir, tmp_path):
    """Incremental DPO: the policy starts from the parent adapter, so the reference must be that
    parent (the first loss is log 2), not the base model, which the parent has already moved away
    from; and the saved adapter is the trained one only."""
    import json

    from safetensors.torch import load_file

    pairs = preference_pairs()
    # No dropout: then the policy's first pass is exactly the reference's.
    settings = {"learning_rate": 2e-3, "batch_size": 4, "warmup_ratio": 0.1, "early_stopping_patience": 0,
                "save_total_limit": 1, "seed": 42, "lora_dropout": 0.0}
    parent_hp, errors = hp_rules.validate("dpo", {**settings, "n_epochs": 8}, hidden_size=128)
    assert not errors
    parent = run_fine_tune(RunSpec(base_model_path=str(demo_model_dir), output_dir=str(tmp_path / "parent"), method="dpo",
                                   hyperparameters=parent_hp, train=[], validation=[], train_pairs=pairs[:8],
                                   validation_pairs=pairs[8:]))
    assert parent.status == "succeeded" and parent.metrics["chosen_margin_after"] > 0
    parent_dir = tmp_path / "parent" / "model"

    child_hp, errors = hp_rules.validate("dpo", {**settings, "n_epochs": 1, "learning_rate": 1e-4}, hidden_size=128)
    assert not errors
    losses = []
    child = run_fine_tune(
        RunSpec(base_model_path=str(demo_model_dir), output_dir=str(tmp_path / "child"), method="dpo",
                hyperparameters=child_hp, train=[], validation=[], train_pairs=pairs[:8], validation_pairs=pairs[8:],
                init_adapter_path=str(parent_dir)),
        Hooks(on_event=lambda event: losses.append(event["loss"]) if "loss" in event else None),
    )
    assert child.status == "succeeded"
    # Measured against the base, the parent's margin would already give a loss far under log 2.
    assert losses[0] == pytest.approx(0.6931, abs=0.001), losses
    # The child continues the parent: it starts from the parent's margin, not the base's.
    assert child.metrics["chosen_margin_before"] == pytest.approx(parent.metrics["chosen_margin_after"], abs=0.05)
    saved = tmp_path / "child" / "model"
    assert not (saved / "reference").exists()
    assert json.loads((saved / "adapter_config.json").read_text())["peft_type"] == "LORA"
    trained, started = load_file(saved / "adapter_model.safetensors"), load_file(parent_dir / "adapter_model.safetensors")
    assert trained.keys() == started.keys()
    assert any(not (trained[key] == started[key]).all() for key in trained)  # the policy moved, the reference did not


@pytest.mark.django_db
@pytest.mark.timeout(600)
def test_a_dpo_job_validates_its_preference_pairs_and_trains(ml, credit, demo_model_dir, settings, tmp_path):
    settings.TRAINING_OUTPUT_DIR = str(tmp_path)
    actor = ml["ml_engineer"]
    dataset = dataset_create(actor=actor, department=credit, name="Preferences")
    rows = [{"messages": [*p["prompt"], *p["chosen"]], "rejected": p["rejected"][0]["content"]} for p in preference_pairs()]
    version, _ = dataset_version_create(actor=actor, dataset=dataset, payloads=rows, origin="upload")
    assert len(version.preference_pairs()) == 10
    job = services.fine_tuning_job_create(actor=actor, dataset_version=version, method="dpo", validation_fraction=0.2,
                                          hyperparameters={"n_epochs": 2, "early_stopping_patience": 0})
    assert job.hyperparameters["dpo_beta"] == 0.1
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.QUEUED, job.error_message
    assert "Files validated: 8 training and 2 validation preference pairs" in job.events.values_list("message", flat=True)[1]
    # the training job itself, in this process (the function the gpu worker's task calls)
    job_execute(job_id=job.run_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.SUCCEEDED, job.error_message
    assert job.fine_tuned_model.kind == "adapter" and job.fine_tuned_model.method == "dpo"
    assert job.metrics["steps"] == 4 and "chosen_margin_after" in job.metrics
    assert job.events.filter(type="metrics", data__has_key="loss").exists()

    # from the jobs page: method DPO with its beta
    from django.urls import reverse

    from tests.conftest import login
    from training.models import FineTuningJob

    response = login(actor).post(reverse("training:job_list"), {
        "dataset_version": version.pk, "method": "dpo", "dpo_beta": "0.2", "validation_fraction": "0.2"})
    created = FineTuningJob.objects.order_by("-created_at").first()
    assert response.status_code == 302 and created.method == "dpo" and created.hyperparameters["dpo_beta"] == 0.2

    # a dataset without preference pairs: the DPO job fails at validation with that message
    plain, _ = dataset_version_create(actor=actor, dataset=dataset_create(actor=actor, department=credit, name="Plain"),
                                      payloads=[{"messages": r["messages"]} for r in rows], origin="upload")
    job = services.fine_tuning_job_create(actor=actor, dataset_version=plain, method="dpo")
    job_execute(job_id=job.validation_job_id)
    job.refresh_from_db()
    assert job.status == FineTuningStatus.FAILED
    assert job.error_message == "DPO needs preference pairs (rows with a rejected answer); this dataset version has none."
