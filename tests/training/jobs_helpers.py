"""Shared pieces of the fine-tuning tests: the demo model, a facts dataset, fast hyperparameters."""

from __future__ import annotations

from training.services_datasets import dataset_create, dataset_version_create

from .facts import fact_rows

# Tuned on the demo model (README "Learnability"): enough to learn 10 facts in well under 2 minutes.
LORA_HP = {
    "learning_rate": 1e-2, "n_epochs": 12, "batch_size": 4, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
    "warmup_ratio": 0.1, "early_stopping_patience": 3, "save_total_limit": 2, "seed": 7,
}
FULL_HP = {
    "learning_rate": 2e-3, "n_epochs": 12, "batch_size": 4, "warmup_ratio": 0.1,
    "early_stopping_patience": 3, "save_total_limit": 1, "seed": 7,
}
VALIDATION_FRACTION = 0.25


def facts_version(actor, department, *, phrasings: int = 2, name: str = "Demo facts"):
    dataset = dataset_create(actor=actor, department=department, name=name)
    version, _ = dataset_version_create(actor=actor, dataset=dataset, payloads=fact_rows(phrasings), origin="upload")
    return version
