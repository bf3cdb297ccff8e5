"""Shared pieces of the fine-tuning tests: the demo model, a facts dataset, fast hyperparameters."""

from __future__ import annotations

import time

import pytest

from training.services_datasets import dataset_create, dataset_version_create

from .facts import fact_rows

# Measured on the demo model (README "Learnability"): full fine-tuning learns the 10 facts in 80 steps.
# Early stopping off here: with it, the best-validation-loss checkpoint (step 20 in one run, exact
# match 0.4) is reloaded at the end, since the validation rows are paraphrases, not the trained rows.
FULL_HP = {
    "learning_rate": 3e-3, "n_epochs": 20, "batch_size": 4, "warmup_ratio": 0.1, "eval_every_steps": 20,
    "early_stopping_patience": 0, "save_total_limit": 1, "seed": 42,
}
# LoRA learning the same facts: the learning rate, rank and alpha are the defaults for the demo
# model's size (hidden 128: lr 3e-3, r 16, alpha 32; hyperparameters.defaults), 160 steps.
LORA_LEARN_HP = {
    "n_epochs": 40, "batch_size": 4, "warmup_ratio": 0.1, "eval_every_steps": 40,
    "early_stopping_patience": 0, "save_total_limit": 1, "seed": 42,
}
# The mechanics (events, checkpoints, cancel, exact resume): few steps.
LORA_HP = {
    "learning_rate": 5e-3, "n_epochs": 8, "batch_size": 4, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
    "warmup_ratio": 0.1, "eval_every_steps": 8, "early_stopping_patience": 3, "save_total_limit": 2, "seed": 42,
}
VALIDATION_FRACTION = 0.25


def facts_version(actor, department, *, phrasings: int = 2, name: str = "Demo facts"):
    dataset = dataset_create(actor=actor, department=department, name=name)
    version, _ = dataset_version_create(actor=actor, dataset=dataset, payloads=fact_rows(phrasings), origin="upload")
    return version


def wait_for(predicate, proc, timeout: float, what: str, interval: float = 0.5):
    """Poll `predicate` until it returns something truthy; fail if the worker `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"worker exited while waiting for {what}:\n{proc.stdout.read()[-5000:]}")
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")
