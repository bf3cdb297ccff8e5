"""Fine-tuning hyperparameters: defaults per method and range validation with one message per field."""

from __future__ import annotations

METHODS = ("full", "lora", "dora", "ia3", "dpo")  # dpo: preference pairs, a LoRA adapter (finetune/dpo.py)
SCHEDULERS = ("linear", "cosine", "constant_with_warmup", "constant")

DEFAULT_LEARNING_RATE = {"full": 1e-5, "lora": 2e-4, "dora": 2e-4, "ia3": 3e-3, "dpo": 5e-5}
# Low-rank adapters on a small model (hidden size up to SMALL_HIDDEN_SIZE, e.g. the demo's 128) need a
# larger step and rank than on a 7B one: 2e-4 x (2048 / hidden size), at most 3e-3, and r 16 / alpha 32.
# Measured on the demo model (README "Learnability"): LoRA r 16 at 3e-3 learns the facts (EM 1.0),
# at 2e-4 or 1e-2 it does not. Models with a hidden size of 2048 or more keep 2e-4 and r 8.
REFERENCE_HIDDEN_SIZE = 2048
SMALL_HIDDEN_SIZE = 512
MAX_ADAPTER_LEARNING_RATE = 3e-3

# name: (type, minimum, maximum)
RANGES: dict[str, tuple[type, float, float]] = {
    "n_epochs": (int, 1, 1000),
    "batch_size": (int, 1, 1024),
    "gradient_accumulation_steps": (int, 1, 1024),
    "learning_rate": (float, 1e-8, 1.0),
    "warmup_ratio": (float, 0.0, 0.5),
    "weight_decay": (float, 0.0, 1.0),
    "max_length": (int, 16, 131072),
    "lora_r": (int, 1, 1024),
    "lora_alpha": (int, 1, 4096),
    "lora_dropout": (float, 0.0, 0.9),
    "early_stopping_patience": (int, 0, 1000),
    "eval_every_steps": (int, 0, 10**7),
    "save_total_limit": (int, 1, 100),
    "seed": (int, 0, 2**31 - 1),
    "dpo_beta": (float, 0.001, 10.0),
}


def model_hidden_size(model_path: str) -> int | None:
    """The hidden size from a model directory's config.json, or None when it cannot be read."""
    import json
    import os

    try:
        with open(os.path.join(model_path, "config.json"), encoding="utf-8") as handle:
            size = json.load(handle).get("hidden_size")
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return size if isinstance(size, int) and size > 0 else None


def default_learning_rate(method: str, hidden_size: int | None = None) -> float:
    rate = DEFAULT_LEARNING_RATE.get(method, 2e-4)
    if method in ("lora", "dora", "dpo") and hidden_size and hidden_size < REFERENCE_HIDDEN_SIZE:
        rate = min(MAX_ADAPTER_LEARNING_RATE, rate * REFERENCE_HIDDEN_SIZE / hidden_size)
    return float(f"{rate:.3g}")


def defaults(method: str, hidden_size: int | None = None) -> dict:
    """The defaults for `method` on a base model of `hidden_size` (None: a large model's defaults)."""
    small = bool(hidden_size) and hidden_size <= SMALL_HIDDEN_SIZE
    values = {
        "n_epochs": 3,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": default_learning_rate(method, hidden_size),
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.1,
        "weight_decay": 0.0,
        "max_length": 1024,
        "lora_r": 16 if small else 8,
        "lora_alpha": 32 if small else 16,
        "lora_dropout": 0.05,
        "target_modules": "auto",
        "early_stopping_patience": 3,
        "eval_every_steps": 0,  # 0: once per epoch; evaluations and checkpoints go together
        "save_total_limit": 3,
        "seed": 42,
    }
    if method == "dpo":
        values["dpo_beta"] = 0.1  # the DPO paper's and TRL's default
    return values


def validate(method: str, given: dict | None, *, hidden_size: int | None = None) -> tuple[dict, dict[str, str]]:
    """(hyperparameters with defaults filled in, {field: error}). Unknown fields are errors too.
    `hidden_size`: the base model's, for the size-dependent adapter defaults."""
    errors: dict[str, str] = {}
    if method not in METHODS:
        errors["method"] = f"Unknown method {method!r}; choose one of {', '.join(METHODS)}."
    values = defaults(method, hidden_size)
    given = dict(given or {})
    for name, value in given.items():
        if value is None or value == "" or value == "auto" and name != "target_modules":
            continue
        if name not in values:
            errors[name] = "Unknown hyperparameter."
            continue
        if name == "lr_scheduler":
            if value not in SCHEDULERS:
                errors[name] = f"Choose one of {', '.join(SCHEDULERS)}."
            else:
                values[name] = value
            continue
        if name == "target_modules":
            if value == "auto":
                values[name] = "auto"
            elif isinstance(value, str):
                values[name] = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                values[name] = value
            else:
                errors[name] = "A list of module names, or auto."
            continue
        kind, low, high = RANGES[name]
        try:
            if isinstance(value, bool):
                raise ValueError
            number = kind(value)
            if kind is int and float(value) != number:
                raise ValueError
        except (TypeError, ValueError):
            errors[name] = f"Must be {'an integer' if kind is int else 'a number'}."
            continue
        except OverflowError:  # int(1e400) or float(10**400): beyond any range
            errors[name] = f"Must be between {low:g} and {high:g}."
            continue
        if not low <= number <= high:
            errors[name] = f"Must be between {low:g} and {high:g}."
            continue
        values[name] = number
    return values, errors
