"""Background job kinds of training, registered with core.jobs (one heartbeat, one reaper):
`training.validate` (default queue), `training.fine_tune` and `training.evaluate` (gpu queue)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from config.celery import Queue
from core.jobs import JobFailed, register
from core.models import Job
from core.services import job_progress

from . import job_services as services
from .finetune.runner import Hooks, RunSpec, TrainingInputError, check_base_model, run_fine_tune
from .models import Evaluation, FineTuningJob, ModelVersionKind


def _split(job: FineTuningJob):
    from .datasets.split import SplitError, dataset_version_split

    try:
        return dataset_version_split(
            job.dataset_version, seed=job.hyperparameters.get("seed", 42), validation_fraction=job.validation_fraction
        )
    except SplitError as exc:
        raise TrainingInputError(f"The dataset is too small to split: {exc}.") from exc


def _split_pairs(job: FineTuningJob) -> tuple[list[dict], list[dict]]:
    """DPO: the seeded split of the version's preference pairs (rows with a rejected answer)."""
    from .datasets.split import SplitError, split_rows

    rows = [r for r in job.dataset_version.rows.order_by("index") if r.rejected]
    if not rows:
        raise TrainingInputError("DPO needs preference pairs (rows with a rejected answer); this dataset version has none.")
    try:
        train, validation = split_rows(rows, validation_ratio=job.validation_fraction, seed=job.hyperparameters.get("seed", 42))
    except SplitError as exc:
        raise TrainingInputError(f"The dataset is too small to split: {exc}.") from exc
    return [r.as_dpo() for r in train], [r.as_dpo() for r in validation]


def _training_data(job: FineTuningJob) -> dict:
    """RunSpec's data fields for the job's method."""
    if job.method == "dpo":
        train_pairs, validation_pairs = _split_pairs(job)
        return {"train": [], "validation": [], "train_pairs": train_pairs, "validation_pairs": validation_pairs}
    train, validation = _split(job)
    return {"train": train, "validation": validation}


def _fail(job: FineTuningJob, message: str) -> None:
    FineTuningJob.objects.filter(pk=job.pk).update(error=message, finished_at=timezone.now())
    services.event_add(job=job, level="error", message=message)


@register(services.KIND_VALIDATE, queue=Queue.DEFAULT)
def validate_files(core_job: Job) -> dict:
    from .finetune import hyperparameters as hp_rules

    job = FineTuningJob.objects.select_related("dataset_version").get(pk=core_job.params["fine_tuning_job"])
    if job.cancelled_at:
        return {"cancelled": True}
    try:
        _values, errors = hp_rules.validate(
            job.method, job.hyperparameters, hidden_size=hp_rules.model_hidden_size(job.base_model_path))
        if errors:
            raise TrainingInputError("Bad hyperparameters: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        check_base_model(job.base_model_path)
        data = _training_data(job)
        if job.method == "dpo":
            train, validation = data["train_pairs"], data["validation_pairs"]
            _check_template(job, [[*p["prompt"], *p["chosen"]] for p in train])
        else:
            train, validation = data["train"], data["validation"]
            _check_template(job, train)
    except TrainingInputError as exc:
        _fail(job, str(exc))
        raise JobFailed(str(exc)) from None
    with transaction.atomic():
        job = FineTuningJob.objects.select_for_update().get(pk=job.pk)
        if job.cancelled_at:
            return {"cancelled": True}
        services.fine_tuning_job_queue_run(job=job)
    unit = "preference pairs" if job.method == "dpo" else "examples"
    services.event_add(job=job, message=f"Files validated: {len(train)} training and {len(validation)} validation {unit}; job queued")
    return {"train": len(train), "validation": len(validation)}


def _check_template(job: FineTuningJob, train: list[list[dict]]) -> None:
    from transformers import AutoTokenizer

    from .finetune.encoding import check_end_of_turn_carries_loss, encode_conversation

    try:
        tokenizer = AutoTokenizer.from_pretrained(job.base_model_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TrainingInputError(f"The base model's tokenizer cannot be loaded: {exc}") from exc
    encoded = [encode_conversation(tokenizer, m, job.hyperparameters["max_length"]) for m in train]
    try:
        check_end_of_turn_carries_loss(tokenizer, encoded)
    except ValueError as exc:
        raise TrainingInputError(str(exc)) from exc


@register(services.KIND_FINE_TUNE, queue=Queue.GPU)
def fine_tune(core_job: Job) -> dict:
    job = FineTuningJob.objects.select_related("dataset_version", "parent_version").get(pk=core_job.params["fine_tuning_job"])
    if job.cancelled_at:
        return {"cancelled": True}
    if job.run_job_id != core_job.pk:  # a stale redelivery of an older run
        return {"superseded": True}
    services.event_add(job=job, message=f"Training started ({job.method}) on {core_job.worker}")
    parent = job.parent_version
    spec_kwargs = {}
    if parent is not None and parent.kind == ModelVersionKind.ADAPTER:
        spec_kwargs["init_adapter_path"] = parent.adapter_path

    def on_event(event: dict) -> None:
        parts = [f"step {event['step']}"]
        for key, label in (("loss", "loss"), ("eval_loss", "eval_loss"), ("learning_rate", "lr")):
            if key in event:
                parts.append(f"{label} {event[key]:.4g}")
        data = {k: v for k, v in event.items() if k != "step"}
        services.event_add(job=job, type="metrics", message=", ".join(parts), step=event["step"], **data)

    def on_checkpoint(checkpoint: dict) -> None:
        services.checkpoint_record(job=job, **checkpoint)
        services.event_add(job=job, message=f"Checkpoint saved at step {checkpoint['step']}", step=checkpoint["step"])

    try:
        data = _training_data(job)
        train, validation = data["train"] or data["train_pairs"], data["validation"] or data["validation_pairs"]
        result = run_fine_tune(
            RunSpec(
                base_model_path=job.base_model_path,
                output_dir=job.output_dir,
                method=job.method,
                hyperparameters=job.hyperparameters,
                **data,
                **spec_kwargs,
            ),
            Hooks(
                on_event=on_event,
                on_checkpoint=on_checkpoint,
                heartbeat=lambda fraction, message: job_progress(job=core_job, fraction=fraction * 0.98, message=message),
                should_cancel=lambda: FineTuningJob.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists(),
                on_resume=lambda step: services.training_resumed(job=job, step=step),
            ),
        )
    except TrainingInputError as exc:
        _fail(job, str(exc))
        raise JobFailed(str(exc)) from None
    services.checkpoints_prune_missing(job=job)
    if result.status == "cancelled":
        now = timezone.now()
        FineTuningJob.objects.filter(pk=job.pk).update(cancelled_at=now, finished_at=now, metrics={**job.metrics, **result.metrics})
        services.event_add(job=job, message=f"Job cancelled at step {result.metrics['steps']}; the last checkpoint is kept")
        return {"cancelled": True, **result.metrics}
    metadata = services.lineage(
        job=job, metrics=result.metrics, chat_template=result.chat_template, train_rows=len(train), validation_rows=len(validation)
    )
    version = services.model_version_register(job=job, model_dir=result.model_dir, metadata=metadata, chat_template=result.chat_template)
    FineTuningJob.objects.filter(pk=job.pk).update(
        fine_tuned_model=version, finished_at=timezone.now(), metrics={**job.metrics, **result.metrics}
    )
    services.event_add(job=job, message=f"Job succeeded: model version {version.name}")
    if job.metrics.get("auto_evaluate", True):
        services.evaluation_create(
            actor=job.created_by, model_version=version, dataset_version=job.dataset_version, check_permission=False,
        )
    return {"model_version": version.pk, **result.metrics}


@register(services.KIND_EVALUATE, queue=Queue.GPU)
def evaluate(core_job: Job) -> dict:
    from .evaluation import run_evaluation

    evaluation = Evaluation.objects.select_related("model_version", "dataset_version").get(pk=core_job.params["evaluation"])
    metrics, items = run_evaluation(
        evaluation, progress=lambda fraction, message: job_progress(job=core_job, fraction=fraction, message=message)
    )
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics=metrics, items=items)
    return metrics
