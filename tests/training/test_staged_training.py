"""Incremental and staged training at the runner level: a job can continue an existing adapter on a
new dataset version, or start from another job's full weights (general domain first, then a
scenario). With a vanishing learning rate the second stage must end where the first one did."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from training.finetune import hyperparameters as H
from training.finetune.demo_model import ensure_demo_model
from training.finetune.runner import RunSpec, run_fine_tune

from .facts import conversations


def hp(method, **given):
    values, errors = H.validate(method, {"n_epochs": 2, "batch_size": 4, "early_stopping_patience": 0,
                                         "save_total_limit": 1, "seed": 7, **given}, hidden_size=128)
    assert not errors
    return values


@pytest.fixture(scope="module")
def base():
    return str(ensure_demo_model())


def tensors(path, name):
    return load_file(f"{path}/{name}")


def test_an_adapter_continues_on_a_new_dataset_version(base, tmp_path):
    rows = conversations(2)
    first = run_fine_tune(RunSpec(base, str(tmp_path / "a"), "lora", hp("lora"), rows[:12], rows[12:]))
    general = tensors(first.model_dir, "adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in general.items())
    # the new version only: the scenario rows, continuing the adapter (a fresh one starts with B = 0)
    second = run_fine_tune(RunSpec(base, str(tmp_path / "b"), "lora", hp("lora", learning_rate=1e-8), rows[12:], rows[:4],
                                   init_adapter_path=first.model_dir))
    continued = tensors(second.model_dir, "adapter_model.safetensors")
    assert continued.keys() == general.keys()
    for key in general:
        assert torch.allclose(continued[key], general[key], atol=1e-5), key


def test_a_job_starts_from_another_jobs_full_weights(base, tmp_path):
    rows = conversations(2)
    first = run_fine_tune(RunSpec(base, str(tmp_path / "a"), "full", hp("full", learning_rate=3e-3), rows[:12], rows[12:]))
    stage_one = tensors(first.model_dir, "model.safetensors")
    original = tensors(base, "model.safetensors")
    key = next(k for k in stage_one if k.endswith("mlp.down_proj.weight"))
    assert not torch.allclose(stage_one[key], original[key])
    second = run_fine_tune(RunSpec(base, str(tmp_path / "b"), "full", hp("full", learning_rate=1e-8), rows[12:], rows[:4],
                                   init_model_path=first.model_dir))
    stage_two = tensors(second.model_dir, "model.safetensors")
    assert torch.allclose(stage_two[key], stage_one[key], atol=1e-5)
