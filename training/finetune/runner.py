"""The fine-tuning loop: transformers' Trainer (checkpoints with optimizer, scheduler and RNG state,
exact resume, early stopping) with peft adapters, plus callbacks that report events, send the
job's heartbeat and stop gracefully on cancel. No Django in here: the job handler passes callables."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .encoding import IGNORE, TemplateError, check_end_of_turn_carries_loss, encode_conversation, template_sha256


MARGIN_PAIRS = 32


class TrainingInputError(Exception):
    """Bad input that ends the job as failed with this message (shown to the user as is)."""


@dataclass
class RunSpec:
    base_model_path: str
    output_dir: str
    method: str
    hyperparameters: dict
    train: list[list[dict]]
    validation: list[list[dict]]
    init_adapter_path: str | None = None  # incremental training: continue this adapter
    init_model_path: str | None = None  # staged training: full weights of an earlier job
    # method "dpo": preference pairs in DatasetRow.as_dpo()'s shape ({"prompt", "chosen", "rejected"})
    train_pairs: list[dict] = field(default_factory=list)
    validation_pairs: list[dict] = field(default_factory=list)


@dataclass
class Hooks:
    on_event: Callable[[dict], None] = lambda event: None
    on_checkpoint: Callable[[dict], None] = lambda checkpoint: None
    heartbeat: Callable[[float, str], None] = lambda fraction, message: None
    should_cancel: Callable[[], bool] = lambda: False
    on_resume: Callable[[int], None] = lambda step: None


@dataclass
class RunResult:
    status: str  # "succeeded" | "cancelled"
    model_dir: str | None
    metrics: dict = field(default_factory=dict)
    resumed_from_step: int | None = None
    chat_template: str | None = None


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (a directory whose trainer_state.json was written)."""
    folder = checkpoints_dir(output_dir)
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and (path / "trainer_state.json").exists():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def check_base_model(path: str) -> dict:
    """The base model's config, or a clear TrainingInputError."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not path or not os.path.isdir(path):
        raise TrainingInputError(f"The base model directory {path!r} does not exist.")
    if not os.path.exists(os.path.join(path, "config.json")):
        raise TrainingInputError(f"{path!r} is not a transformers model directory (no config.json).")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise TrainingInputError(f"The base model's config.json cannot be read: {exc}") from exc
    architectures = getattr(config, "architectures", None) or []
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        not architectures or any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in architectures)
    )
    if not causal:
        raise TrainingInputError(
            f"{path!r} is not a causal language model (model type {config.model_type!r}, architectures {architectures})."
        )
    return config.to_dict()


def find_target_modules(model, method: str) -> tuple[list[str], list[str]]:
    """Linear layers inside the transformer blocks, by their short names (from the architecture, not a
    list of names per model family); for IA3 also the feed-forward ones (input = FFN width)."""
    import torch

    names: dict[str, int] = {}
    output_names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            short = name.rsplit(".", 1)[-1]
            if re.search(r"\.\d+\.", f".{name}."):  # inside a numbered block
                names[short] = module.in_features
            else:
                output_names.add(short)
    targets = sorted(n for n in names if n not in output_names)
    if not targets:
        raise TrainingInputError("No linear layers found in the model's blocks to attach an adapter to.")
    intermediate = getattr(model.config, "intermediate_size", None)
    feedforward = [n for n in targets if intermediate and names[n] == intermediate]
    return targets, feedforward


class _TokenCounter:
    def __init__(self):
        self.tokens = 0


def padded_batch(rows: list[dict], pad_id: int, counter: _TokenCounter | None = None) -> dict:
    """Encoded rows (input_ids, labels) as one right-padded batch; counts its non-padding tokens."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        attention[i, :n] = 1
    if counter is not None:
        counter.tokens += int(attention.sum())
    return {"input_ids": ids, "labels": labels, "attention_mask": attention}


def _collator(pad_id: int, counter: _TokenCounter):
    def collate(features: list[dict]) -> dict:
        return padded_batch(features, pad_id, counter)

    return collate


def _callbacks(hooks: Hooks, counter: _TokenCounter):
    from transformers import TrainerCallback

    class JobCallback(TrainerCallback):
        """Events (loss, eval_loss, lr, tokens/s, ETA), checkpoints, heartbeat, graceful cancel."""

        def __init__(self):
            self.started = time.monotonic()
            self.last_beat = 0.0
            self.last_cancel_check = 0.0
            self.last_log = (time.monotonic(), 0)
            self.steps_at_start = None
            self.cancelled = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()
            self.steps_at_start = state.global_step
            self.last_log = (self.started, counter.tokens)

        def on_step_end(self, args, state, control, **kwargs):
            now = time.monotonic()
            if now - self.last_cancel_check >= 1.0:
                self.last_cancel_check = now
                if hooks.should_cancel():
                    self.cancelled = True
                    control.should_save = True
                    control.should_training_stop = True
            if now - self.last_beat >= 2.0 or state.global_step == state.max_steps:
                self.last_beat = now
                hooks.heartbeat(state.global_step / max(state.max_steps, 1), f"step {state.global_step}/{state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            now = time.monotonic()
            then, tokens = self.last_log
            self.last_log = (now, counter.tokens)
            done = state.global_step - (self.steps_at_start or 0)
            elapsed = now - self.started
            eta = (state.max_steps - state.global_step) * elapsed / done if done else None
            event = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
            for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "train_loss"):
                if key in logs:
                    event[key] = float(logs[key])
            if "loss" in event:
                event["tokens_per_s"] = round((counter.tokens - tokens) / max(now - then, 1e-6), 1)
                event["eta_s"] = round(eta, 1) if eta is not None else None
            if len(event) > 2:
                hooks.on_event(event)

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            metrics = {}
            for entry in reversed(state.log_history):
                if entry.get("step") == state.global_step:
                    for key in ("loss", "eval_loss"):
                        if key in entry and key not in metrics:
                            metrics[key] = entry[key]
            hooks.on_checkpoint({"step": state.global_step, "path": str(path), "metrics": metrics})

    return JobCallback()


def estimated_checkpoint_bytes(model, trainable: int) -> int:
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(total + trainable * 4 * 3)  # weights + fp32 optimizer moments and gradients


def run_fine_tune(spec: RunSpec, hooks: Hooks | None = None) -> RunResult:
    try:
        return _run(spec, hooks or Hooks())
    except TrainingInputError:
        raise
    except TemplateError as exc:
        raise TrainingInputError(str(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise TrainingInputError(f"The disk is full ({spec.output_dir}): free space and resume the job.") from exc
        raise
    except RuntimeError as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
            raise TrainingInputError(
                "CUDA out of memory: lower batch_size or max_length, raise gradient_accumulation_steps, or use LoRA."
            ) from exc
        raise


def _run(spec: RunSpec, hooks: Hooks) -> RunResult:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, EarlyStoppingCallback, Trainer, TrainingArguments

    from transformers import set_seed

    hp = spec.hyperparameters
    # Before the model and the adapter exist: LoRA's initial weights come from this seed, not from
    # whatever the process did before (two jobs in one worker must train identically).
    set_seed(hp["seed"])
    check_base_model(spec.base_model_path)
    preference = spec.method == "dpo"
    n_train, n_validation = (len(spec.train_pairs), len(spec.validation_pairs)) if preference else (len(spec.train), len(spec.validation))
    if n_train < 1 or n_validation < 1:
        raise TrainingInputError(
            f"The dataset is too small to split: {n_train} training and {n_validation} validation "
            f"{'preference pairs' if preference else 'examples'} (at least one of each is needed)."
        )
    tokenizer_dir = spec.init_model_path or spec.base_model_path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if preference:
        from .dpo import encode_pair

        encoded_train = [encode_pair(tokenizer, p, hp["max_length"]) for p in spec.train_pairs]
        encoded_val = [encode_pair(tokenizer, p, hp["max_length"]) for p in spec.validation_pairs]
        check_end_of_turn_carries_loss(tokenizer, [e["chosen"] for e in encoded_train])
        carries = lambda e: all(any(x != IGNORE for x in e[side]["labels"]) for side in ("chosen", "rejected"))  # noqa: E731
    else:
        encoded_train = [encode_conversation(tokenizer, m, hp["max_length"]) for m in spec.train]
        encoded_val = [encode_conversation(tokenizer, m, hp["max_length"]) for m in spec.validation]
        check_end_of_turn_carries_loss(tokenizer, encoded_train)
        carries = lambda e: any(x != IGNORE for x in e["labels"])  # noqa: E731
    encoded_train = [e for e in encoded_train if carries(e)]
    encoded_val = [e for e in encoded_val if carries(e)] or encoded_val

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(
        spec.init_model_path or spec.base_model_path,
        local_files_only=True,
        dtype=torch.bfloat16 if bf16 and spec.method != "full" else torch.float32,
    )
    targets, feedforward = find_target_modules(model, spec.method)
    target_modules = targets if hp.get("target_modules") in (None, "auto") else hp["target_modules"]
    if spec.method != "full":
        from peft import IA3Config, LoraConfig, PeftModel, get_peft_model

        if spec.init_adapter_path:
            model = PeftModel.from_pretrained(model, spec.init_adapter_path, is_trainable=True)
            if spec.method == "dpo":
                # DPO's reference is where the policy starts: the parent adapter, a frozen second copy.
                from .dpo import REFERENCE_ADAPTER

                model.load_adapter(spec.init_adapter_path, adapter_name=REFERENCE_ADAPTER, is_trainable=False)
        elif spec.method == "ia3":
            ff = [m for m in feedforward if m in target_modules]
            model = get_peft_model(
                model, IA3Config(task_type="CAUSAL_LM", target_modules=target_modules, feedforward_modules=ff)
            )
        else:
            try:
                config = LoraConfig(
                    task_type="CAUSAL_LM",
                    r=hp["lora_r"],
                    lora_alpha=hp["lora_alpha"],
                    lora_dropout=hp["lora_dropout"],
                    target_modules=target_modules,
                    use_dora=spec.method == "dora",
                )
                model = get_peft_model(model, config)
            except ValueError as exc:
                raise TrainingInputError(f"target_modules: {exc}") from exc
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    output_dir = Path(spec.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    needed = estimated_checkpoint_bytes(model, trainable) * 2
    free = shutil.disk_usage(output_dir).free
    if free < needed:
        raise TrainingInputError(
            f"Not enough disk space in {output_dir}: {free // 2**20} MiB free, about {needed // 2**20} MiB needed for checkpoints."
        )

    steps_per_epoch = math.ceil(len(encoded_train) / (hp["batch_size"] * hp["gradient_accumulation_steps"]))
    total_steps = steps_per_epoch * hp["n_epochs"]
    eval_every = hp["eval_every_steps"] or steps_per_epoch
    counter = _TokenCounter()
    job_callback = _callbacks(hooks, counter)
    args = TrainingArguments(
        output_dir=str(checkpoints_dir(output_dir)),
        num_train_epochs=hp["n_epochs"],
        per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=hp["batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        learning_rate=hp["learning_rate"],
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_ratio"],
        weight_decay=hp["weight_decay"],
        max_grad_norm=1.0,
        logging_steps=max(1, total_steps // 300),
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=eval_every,
        save_total_limit=hp["save_total_limit"],
        load_best_model_at_end=hp["early_stopping_patience"] > 0,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        seed=hp["seed"],
        data_seed=hp["seed"],
        bf16=bf16,
        use_cpu=not cuda,
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        prediction_loss_only=preference,
    )
    callbacks = [job_callback]
    if hp["early_stopping_patience"] > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=hp["early_stopping_patience"]))
    trainer_class, collate = Trainer, _collator(tokenizer.pad_token_id, counter)
    margins_before = None
    if preference:
        from .dpo import chosen_margins, pair_collator, preference_trainer_class

        trainer_class, collate = preference_trainer_class(hp["dpo_beta"]), pair_collator(tokenizer.pad_token_id, counter)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=encoded_train,
        eval_dataset=encoded_val,
        data_collator=collate,
        callbacks=callbacks,
    )
    if preference:
        trainer.model_accepts_loss_kwargs = False  # the DPO loss is a batch mean: divide by accumulation
        # after Trainer placed the model on its device
        margins_before = chosen_margins(trainer.model, tokenizer, spec.train_pairs[:MARGIN_PAIRS], hp["max_length"])
    resume = last_checkpoint(output_dir)
    resumed_from = None
    if resume is not None:
        resumed_from = json.loads((resume / "trainer_state.json").read_text())["global_step"]
        hooks.on_resume(resumed_from)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    metrics = {
        "train_loss": float(result.training_loss),
        "steps": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "trainable_parameters": trainable,
        "target_modules": target_modules if spec.method != "full" else [],
        "best_eval_loss": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
    }
    evals = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]
    if evals:
        metrics["last_eval_loss"] = evals[-1]
    if preference:
        # log π(chosen) - log π(rejected) on the first training pairs, before and after: it should grow
        after = chosen_margins(trainer.model, tokenizer, spec.train_pairs[:MARGIN_PAIRS], hp["max_length"])
        metrics["chosen_margin_before"] = sum(margins_before) / len(margins_before)
        metrics["chosen_margin_after"] = sum(after) / len(after)
    if job_callback.cancelled:
        return RunResult(status="cancelled", model_dir=None, metrics=metrics, resumed_from_step=resumed_from)

    model_dir = output_dir / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    # Only the trained adapter (DPO's frozen reference, when there is one, stays behind).
    trainer.model.save_pretrained(str(model_dir), **({"selected_adapters": ["default"]} if spec.method != "full" else {}))
    tokenizer.save_pretrained(str(model_dir))
    metrics["chat_template_sha256"] = template_sha256(tokenizer.chat_template)
    return RunResult(
        status="succeeded",
        model_dir=str(model_dir),
        metrics=metrics,
        resumed_from_step=resumed_from,
        chat_template=tokenizer.chat_template,
    )
