"""Training throughput: the job's training loop (training.finetune.runner: transformers Trainer +
the job callbacks for events, heartbeat and cancel) against a bare PEFT + torch loop, on the same
model, data, hyperparameters and seed, in this process. Tokens/s counts non-padding tokens.

The job loop evaluates and checkpoints once, at the end (eval_every_steps = all steps); the
bare loop saves its adapter at the end too. On CUDA it also reports the peak memory of each.

    .venv/bin/python bench/train.py [--model DIR] [--method lora] [--epochs 6] [--rows 200] [--repeat 2]

The last line is JSON: {"job_tokens_per_s", "bare_tokens_per_s", "overhead", ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# bench/ itself stays off sys.path (a module there named like a package would shadow it for transformers)
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402

from tests.training.facts import conversations  # noqa: E402
from training.finetune import hyperparameters as hp_rules  # noqa: E402
from training.finetune.demo_model import ensure_demo_model  # noqa: E402
from training.finetune.encoding import encode_conversation  # noqa: E402
from training.finetune.runner import Hooks, RunSpec, _collator, _TokenCounter, find_target_modules, run_fine_tune  # noqa: E402


def data(rows: int) -> tuple[list, list]:
    base = conversations(2)
    train = [base[i % len(base)] for i in range(rows)]
    return train, base[:4]


def job_loop(model_dir: str, method: str, hp: dict, train, validation, out: str) -> dict:
    events = []
    started = time.perf_counter()
    result = run_fine_tune(RunSpec(model_dir, out, method, hp, train, validation), Hooks(on_event=events.append))
    elapsed = time.perf_counter() - started
    train_events = [e for e in events if "train_loss" in e or "loss" in e]
    return {"elapsed": elapsed, "steps": result.metrics["steps"], "events": len(train_events)}


def bare_loop(model_dir: str, method: str, hp: dict, train, out: str) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    started = time.perf_counter()  # like the job's timing: loading the model and the data included
    torch.manual_seed(hp["seed"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = [encode_conversation(tokenizer, m, hp["max_length"]) for m in train]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    targets, _ = find_target_modules(model, method)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=hp["lora_r"], lora_alpha=hp["lora_alpha"],
                                             lora_dropout=hp["lora_dropout"], target_modules=targets, use_dora=method == "dora"))
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=hp["learning_rate"], weight_decay=0.0)
    steps_per_epoch = math.ceil(len(encoded) / hp["batch_size"])
    total = steps_per_epoch * hp["n_epochs"]
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(total * hp["warmup_ratio"]), total)
    counter = _TokenCounter()
    collate = _collator(tokenizer.pad_token_id, counter)
    generator = torch.Generator().manual_seed(hp["seed"])
    for _epoch in range(hp["n_epochs"]):
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for i in range(0, len(order), hp["batch_size"]):
            batch = {k: v.to(device) for k, v in collate([encoded[j] for j in order[i : i + hp["batch_size"]]]).items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(out)
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "steps": total}


def tokens_of(model_dir: str, train, hp: dict) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return sum(len(encode_conversation(tokenizer, m, hp["max_length"])["input_ids"]) for m in train)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="")
    parser.add_argument("--method", default="lora", choices=["lora", "dora"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    model_dir = args.model or str(ensure_demo_model())
    train, validation = data(args.rows)
    hp, errors = hp_rules.validate(args.method, {
        "learning_rate": 1e-3, "n_epochs": args.epochs, "batch_size": args.batch_size, "lora_r": 16, "lora_alpha": 32,
        "lora_dropout": 0.0, "early_stopping_patience": 0, "seed": 1, "save_total_limit": 1, "max_length": 256,
    })
    assert not errors, errors
    hp["eval_every_steps"] = math.ceil(len(train) / hp["batch_size"]) * hp["n_epochs"]
    tokens_per_epoch = tokens_of(model_dir, train, hp)
    tokens = tokens_per_epoch * hp["n_epochs"]
    cuda = torch.cuda.is_available()
    results = {"job": [], "bare": []}
    peaks = {}
    for _ in range(args.repeat):  # alternate, so drift in machine load hits both alike
        for name in ("bare", "job"):
            out = tempfile.mkdtemp(prefix=f"bench-train-{name}-")
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            run = job_loop(model_dir, args.method, hp, train, validation, out) if name == "job" else bare_loop(model_dir, args.method, hp, train, out)
            if cuda:
                peaks[name] = torch.cuda.max_memory_allocated() // 2**20
            shutil.rmtree(out, ignore_errors=True)
            results[name].append(run["elapsed"])
            print(f"{name}: {run['steps']} steps in {run['elapsed']:.2f}s = {tokens / run['elapsed']:.0f} tokens/s", flush=True)
    job_tps = tokens / min(results["job"])
    bare_tps = tokens / min(results["bare"])
    summary = {
        "job_tokens_per_s": round(job_tps, 1),
        "bare_tokens_per_s": round(bare_tps, 1),
        "overhead": round(bare_tps / job_tps - 1, 4),
        "model": model_dir,
        "method": args.method,
        "device": "cuda" if cuda else "cpu",
        "tokens": tokens,
        "epochs": hp["n_epochs"],
        "rows": len(train),
    }
    if cuda:
        summary["peak_memory_mib"] = peaks
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
