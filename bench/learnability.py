"""Learnability on the demo model: exact match on the trained facts before and after one
fine-tuning run of training.finetune.runner (the job's loop), 10 facts x 2 phrasings, seeded split.

    .venv/bin/python bench/learnability.py full 3e-3 20          # method, learning rate, epochs
    .venv/bin/python bench/learnability.py lora auto 40          # auto: the default for the model's size
    R=64 ALPHA=128 .venv/bin/python bench/learnability.py lora 5e-3 30

Env: EVERY (eval/checkpoint every N steps, default once per epoch), BS (batch, 4), R/ALPHA/DROPOUT
(LoRA; unset: the size-dependent defaults), PATIENCE (early stopping, 0). The last line is JSON.
Run it with OMP_NUM_THREADS=1 on a loaded machine (torch's spinning threads slow it tenfold)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from llm.local import LocalTransformersBackend, clear_cache  # noqa: E402
from tests.training.facts import fact_rows  # noqa: E402
from training.datasets.split import split_rows  # noqa: E402
from training.finetune import evaluation as E  # noqa: E402
from training.finetune import hyperparameters as H  # noqa: E402
from training.finetune.demo_model import ensure_demo_model  # noqa: E402
from training.finetune.runner import Hooks, RunSpec, run_fine_tune  # noqa: E402


def exact_match(model_dir: str, adapter: str | None, train) -> float:
    backend = LocalTransformersBackend(model_dir, adapter)
    items = E.qa_items(train)
    predictions = [backend.complete(i["prompt"], max_tokens=24).text for i in items]
    return E.score(predictions, [i["reference"] for i in items])["exact_match"]


def main() -> None:
    method, epochs = sys.argv[1], int(sys.argv[3])
    train, val = split_rows(fact_rows(), validation_ratio=0.25, seed=42)
    train, val = [r["messages"] for r in train], [r["messages"] for r in val]
    given = {
        "learning_rate": None if sys.argv[2] == "auto" else float(sys.argv[2]), "n_epochs": epochs,
        "batch_size": int(os.environ.get("BS", 4)), "early_stopping_patience": int(os.environ.get("PATIENCE", 0)),
        "lora_r": os.environ.get("R"), "lora_alpha": os.environ.get("ALPHA"), "lora_dropout": os.environ.get("DROPOUT"),
        "warmup_ratio": 0.1, "save_total_limit": 1, "eval_every_steps": int(os.environ.get("EVERY", 0)), "seed": 42,
    }
    base = str(ensure_demo_model())
    # unset values take the defaults for the base model's size (hyperparameters.defaults)
    hp, errors = H.validate(method, given, hidden_size=H.model_hidden_size(base))
    assert not errors, errors
    before = exact_match(base, None, train)
    out = tempfile.mkdtemp(prefix="learnability-")
    started = time.perf_counter()
    result = run_fine_tune(RunSpec(base, out, method, hp, train, val), Hooks())
    elapsed = time.perf_counter() - started
    clear_cache()
    after = exact_match(result.model_dir if method == "full" else base, None if method == "full" else result.model_dir, train)
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"method": method, "learning_rate": hp["learning_rate"], "lora_r": hp["lora_r"],
                      "lora_alpha": hp["lora_alpha"], "lora_dropout": hp["lora_dropout"], "epochs": epochs, "steps": result.metrics["steps"],
                      "train_loss": result.metrics["train_loss"], "exact_match_before": before, "exact_match_after": after,
                      "train_seconds": round(elapsed, 1)}))


if __name__ == "__main__":
    main()
