"""Every write about fine-tuning jobs, model versions, evaluations and activations."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.audit import audit_log
from core.models import Job
from core.services import job_create

from .finetune import hyperparameters as hp_rules
from .models import (
    DatasetVersion,
    Evaluation,
    FineTuningCheckpoint,
    FineTuningEvent,
    FineTuningJob,
    FineTuningStatus,
    ModelActivation,
    ModelVersion,
    ModelVersionKind,
)
from .policy import dataset_version_policy
from .policy_jobs import evaluation_policy, fine_tuning_job_policy, model_version_policy

KIND_VALIDATE = "training.validate"
KIND_FINE_TUNE = "training.fine_tune"
KIND_EVALUATE = "training.evaluate"


def training_output_root() -> Path:
    return Path(getattr(settings, "TRAINING_OUTPUT_DIR", None) or Path(settings.VAR_DIR) / "training")


def event_add(*, job: FineTuningJob, message: str, level: str = "info", type: str = "message", step=None, **data) -> FineTuningEvent:
    return FineTuningEvent.objects.create(job=job, level=level, type=type, message=message[:500], step=step, data=data)


def base_model_version_get_or_create(*, path: str) -> ModelVersion:
    """The registry row of a base model directory (evaluations of the base hang on it)."""
    version, _ = ModelVersion.objects.get_or_create(
        kind=ModelVersionKind.BASE,
        base_model_path=path,
        defaults={"name": f"base: {Path(path).name}"},
    )
    return version


@transaction.atomic
def fine_tuning_job_create(
    *,
    actor: Any,
    dataset_version: DatasetVersion,
    method: str,
    base_model_path: str = "",
    hyperparameters: dict | None = None,
    suffix: str = "",
    validation_fraction: float = 0.1,
    parent_version: ModelVersion | None = None,
    teacher: dict | None = None,
    auto_evaluate: bool = True,
) -> FineTuningJob:
    """Create the job in `validating_files`; the validation job checks the files and queues training.
    Hyperparameter errors are raised here (ValidationError per field): nothing is created."""
    if not fine_tuning_job_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    if not dataset_version_policy.user_has_permission_for_instance(actor, "view", dataset_version):
        raise PermissionDenied
    if parent_version is not None and not model_version_policy.user_has_permission_for_instance(actor, "view", parent_version):
        raise PermissionDenied
    if parent_version is not None:
        base_for_defaults = parent_version.base_model_path if parent_version.kind == ModelVersionKind.ADAPTER else parent_version.model_dir
    else:
        base_for_defaults = base_model_path or default_base_model_path()
    values, errors = hp_rules.validate(method, hyperparameters, hidden_size=hp_rules.model_hidden_size(base_for_defaults))
    if not 0 < validation_fraction < 1:
        errors["validation_fraction"] = "Must be between 0 and 1."
    if parent_version is not None:
        if parent_version.kind == ModelVersionKind.ADAPTER and method not in ("lora", "dora", "dpo"):
            errors["method"] = "Continuing an adapter needs method lora or dora (the adapter's own kind), or dpo."
        base_model_path = parent_version.base_model_path if parent_version.kind == ModelVersionKind.ADAPTER else parent_version.model_dir
    base_model_path = base_model_path or default_base_model_path()
    if errors:
        raise ValidationError(errors)
    job = FineTuningJob.objects.create(
        department=dataset_version.dataset.department,
        dataset_version=dataset_version,
        validation_fraction=validation_fraction,
        base_model_path=base_model_path,
        method=method,
        hyperparameters=values,
        suffix=suffix[:64],
        parent_version=parent_version,
        # a dataset distilled from a teacher model passes the teacher on to the job's lineage
        teacher=teacher or (dataset_version.report or {}).get("teacher") or {},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    job.output_dir = str(training_output_root() / job.id.hex)
    job.metrics = {"auto_evaluate": bool(auto_evaluate)}
    job.validation_job = job_create(
        actor=actor, kind=KIND_VALIDATE, params={"fine_tuning_job": str(job.pk)}, check_permission=False
    )
    job.save(update_fields=["output_dir", "metrics", "validation_job"])
    event_add(job=job, message=f"Validating training file {dataset_version}")
    audit_log(actor=actor, action="fine_tuning_job_create", obj=job, department=job.department,
              method=method, dataset_version=dataset_version.pk, hyperparameters=values)
    return job


def default_base_model_path() -> str:
    path = getattr(settings, "TRAINING_BASE_MODEL_PATH", "") or os.environ.get("TRAINING_BASE_MODEL_PATH", "")
    if path:
        return path
    from .finetune.demo_model import demo_model_path

    return str(demo_model_path())


@transaction.atomic
def fine_tuning_job_queue_run(*, job: FineTuningJob) -> Job:
    """After validation (or to resume): a new training run on the gpu queue."""
    run = job_create(actor=job.created_by, kind=KIND_FINE_TUNE, params={"fine_tuning_job": str(job.pk)}, check_permission=False)
    FineTuningJob.objects.filter(pk=job.pk).update(run_job=run, error="")
    job.run_job, job.error = run, ""
    return run


@transaction.atomic
def fine_tuning_job_cancel(*, actor: Any, job: FineTuningJob) -> FineTuningJob:
    job = FineTuningJob.objects.select_for_update().get(pk=job.pk)
    if not fine_tuning_job_policy.user_has_permission_for_instance(actor, "change", job):
        raise PermissionDenied
    if job.is_finished:
        raise ValidationError("The job has already finished.")
    now = timezone.now()
    job.cancel_requested_at = now
    fields = ["cancel_requested_at"]
    if job.status != FineTuningStatus.RUNNING:  # nothing is training: cancelled at once
        job.cancelled_at = job.finished_at = now
        fields += ["cancelled_at", "finished_at"]
    job.save(update_fields=fields)
    event_add(job=job, message="Cancellation requested" if "cancelled_at" not in fields else "Job cancelled")
    audit_log(actor=actor, action="fine_tuning_job_cancel", obj=job, department=job.department)
    return job


@transaction.atomic
def fine_tuning_job_resume(*, actor: Any, job: FineTuningJob) -> FineTuningJob:
    """A failed job (its worker died, the disk filled up) starts a new run that continues from the
    last checkpoint at its exact step."""
    job = FineTuningJob.objects.select_for_update().get(pk=job.pk)
    if not fine_tuning_job_policy.user_has_permission_for_instance(actor, "change", job):
        raise PermissionDenied
    if job.status != FineTuningStatus.FAILED or job.run_job_id is None:
        raise ValidationError("Only a failed training run can be resumed.")
    fine_tuning_job_queue_run(job=job)
    event_add(job=job, message="Resume requested: a new run continues from the last checkpoint")
    audit_log(actor=actor, action="fine_tuning_job_resume", obj=job, department=job.department)
    return job


def checkpoint_record(*, job: FineTuningJob, step: int, path: str, metrics: dict) -> None:
    FineTuningCheckpoint.objects.update_or_create(job=job, step=step, defaults={"path": path, "metrics": metrics})
    checkpoints_prune_missing(job=job)


def checkpoints_prune_missing(*, job: FineTuningJob) -> None:
    """save_total_limit rotates old checkpoints away (and, at the end of training with a limit of 1,
    the last one when it is not the best): list only those on disk."""
    gone = [c.pk for c in FineTuningCheckpoint.objects.filter(job=job) if not os.path.isdir(c.path)]
    FineTuningCheckpoint.objects.filter(pk__in=gone).delete()


def training_resumed(*, job: FineTuningJob, step: int) -> None:
    """Drop what the dead run recorded after the checkpoint: the curve continues from `step`."""
    job.events.filter(type="metrics", step__gt=step).delete()
    job.checkpoints.filter(step__gt=step).delete()
    event_add(job=job, message=f"Resumed from the checkpoint at step {step}", step=step)


def _sha256_file(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def code_version() -> str:
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lineage(*, job: FineTuningJob, metrics: dict, chat_template: str | None, train_rows: int, validation_rows: int) -> dict:
    import peft
    import torch
    import transformers

    from .finetune.encoding import template_sha256

    dv = job.dataset_version
    parent = job.parent_version
    return {
        "job": job.openai_id,
        "method": job.method,
        "base_model": {
            "path": job.base_model_path,
            "config_sha256": _sha256_file(Path(job.base_model_path) / "config.json"),
        },
        "dataset_version": {
            "id": dv.pk,
            "dataset": dv.dataset_id,
            "number": dv.number,
            "content_sha256": dv.content_sha256,
            "rows": dv.row_count,
            "train_rows": train_rows,
            "validation_rows": validation_rows,
            "validation_fraction": job.validation_fraction,
            "split_seed": job.hyperparameters.get("seed"),
        },
        "chat_template": {"sha256": template_sha256(chat_template)},
        "hyperparameters": job.hyperparameters,
        "code_version": code_version(),
        "libraries": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "metrics": metrics,
        "parent": {"model_version": parent.pk, "name": parent.name, "kind": parent.kind} if parent else None,
        "teacher": job.teacher or None,
        "created_at": timezone.now().isoformat(),
    }


@transaction.atomic
def model_version_register(*, job: FineTuningJob, model_dir: str, metadata: dict, chat_template: str | None) -> ModelVersion:
    adapter = job.method != "full"
    version = ModelVersion.objects.create(
        name=f"{Path(job.base_model_path).name}:{job.method}:{job.suffix or job.id.hex[:8]}",
        kind=ModelVersionKind.ADAPTER if adapter else ModelVersionKind.FULL,
        base_model_path=job.base_model_path,
        adapter_path=model_dir if adapter else "",
        weights_path="" if adapter else model_dir,
        method=job.method,
        job=job,
        parent=job.parent_version,
        chat_template=chat_template or "",
        chat_template_sha256=metadata["chat_template"]["sha256"] or "",
        metadata=metadata,
        created_by=job.created_by,
    )
    metadata = {**metadata, "model_version": version.pk}
    Path(model_dir, "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False, default=str))
    ModelVersion.objects.filter(pk=version.pk).update(metadata=metadata)
    version.metadata = metadata
    audit_log(actor=job.created_by, action="model_version_create", obj=version, department=job.department, job=job.openai_id)
    return version


@transaction.atomic
def evaluation_create(
    *,
    actor: Any,
    model_version: ModelVersion,
    dataset_version: DatasetVersion,
    split: str = "validation",
    seed: int | None = None,
    validation_fraction: float | None = None,
    options: dict | None = None,
    check_permission: bool = True,
) -> Evaluation:
    """seed and validation_fraction default to the training job's when the dataset version is the one
    the model was trained on (so "validation" is the rows it held out), else to 42 and 0.1."""
    if check_permission:
        if not model_version_policy.user_has_permission_for_instance(actor, "evaluate", model_version):
            raise PermissionDenied
        if not dataset_version_policy.user_has_permission_for_instance(actor, "view", dataset_version):
            raise PermissionDenied
    if split not in ("validation", "train", "all"):
        raise ValidationError({"split": "Choose validation, train or all."})
    trained = model_version.job
    own_file = trained is not None and trained.dataset_version_id == dataset_version.pk
    if seed is None:
        seed = trained.hyperparameters.get("seed", 42) if own_file else 42
    if validation_fraction is None:
        validation_fraction = trained.validation_fraction if own_file else 0.1
    evaluation = Evaluation.objects.create(
        model_version=model_version,
        dataset_version=dataset_version,
        split=split,
        seed=seed,
        validation_fraction=validation_fraction,
        options=options or {},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    evaluation.job = job_create(actor=actor, kind=KIND_EVALUATE, params={"evaluation": evaluation.pk}, check_permission=False)
    evaluation.save(update_fields=["job"])
    audit_log(actor=actor, action="evaluation_create", obj=evaluation, model_version=model_version.pk)
    return evaluation


def evaluation_rag_knowledge_record(*, evaluation: Evaluation, knowledge_base_ids) -> None:
    """The knowledge bases the evaluation's RAG samples drew on (they decide who sees the samples)."""
    evaluation.rag_knowledge_bases.set(knowledge_base_ids)


def active_activation() -> ModelActivation | None:
    return ModelActivation.objects.select_related("version", "previous").order_by("-id").first()


GATE_METRICS = ("exact_match", "rag_answer_accuracy")


def activation_gate(*, version: ModelVersion, active: ModelVersion | None) -> dict:
    """Compare the candidate's newest evaluations with the active version's, per dataset version
    they share: {"passed": bool, "reason": str, "comparisons": [...]}"""
    if active is None or active.pk == version.pk:
        return {"passed": True, "reason": "no active version to compare with", "comparisons": []}
    mine = {(e.dataset_version_id, e.split): e for e in reversed(list(version.evaluations.filter(job__status="succeeded")))}
    theirs = {(e.dataset_version_id, e.split): e for e in reversed(list(active.evaluations.filter(job__status="succeeded")))}
    if not mine:
        return {"passed": False, "reason": "the version has no finished evaluation", "comparisons": []}
    comparisons = []
    for key, evaluation in mine.items():
        other = theirs.get(key)
        if other is None:
            continue
        for metric in GATE_METRICS:
            if metric in evaluation.metrics and metric in other.metrics:
                comparisons.append({
                    "dataset_version": key[0], "split": key[1], "metric": metric,
                    "candidate_evaluation": evaluation.pk, "active_evaluation": other.pk,
                    "candidate": evaluation.metrics[metric], "active": other.metrics[metric],
                    "ok": evaluation.metrics[metric] >= other.metrics[metric],
                })
    if not comparisons:
        return {"passed": False, "reason": "no evaluation on the same dataset as the active version", "comparisons": []}
    worse = [c for c in comparisons if not c["ok"]]
    return {
        "passed": not worse,
        "reason": "" if not worse else "; ".join(f"{c['metric']} {c['candidate']:.3f} < {c['active']:.3f}" for c in worse),
        "comparisons": comparisons,
    }


def gate_for(*, user: Any, gate: dict) -> dict:
    """The gate as `user` may read it: a comparison on an evaluation they may not see (its dataset is
    another department's) is counted in `hidden`, not shown; the reason names only what they see.
    The activation and its audit entry keep the whole gate."""
    comparisons = gate.get("comparisons", [])
    ids = {c[key] for c in comparisons for key in ("candidate_evaluation", "active_evaluation") if c.get(key)}
    visible_ids = set(evaluation_policy.instances_user_has_permission_for(user, "view").filter(pk__in=ids).values_list("pk", flat=True))
    shown = [c for c in comparisons if c.get("candidate_evaluation") in visible_ids and c.get("active_evaluation") in visible_ids]
    hidden = [c for c in comparisons if c not in shown]
    if not hidden:
        return gate
    worse = [c for c in shown if not c["ok"]]
    reason = gate["reason"]
    if not gate["passed"] and comparisons:
        parts = [f"{c['metric']} {c['candidate']:.3f} < {c['active']:.3f}" for c in worse]
        hidden_worse = sum(1 for c in hidden if not c["ok"])
        if hidden_worse:
            parts.append(ngettext("%(count)d metric on an evaluation you may not see",
                                  "%(count)d metrics on evaluations you may not see", hidden_worse) % {"count": hidden_worse})
        reason = "; ".join(parts)
    return {**gate, "reason": reason, "comparisons": shown, "hidden": len(hidden)}


class ActivationRefused(ValidationError):
    pass


@transaction.atomic
def model_version_activate(*, actor: Any, version: ModelVersion | None, reason: str = "", action: str = "model_version_activate") -> ModelActivation:
    """One new activation row: readers see the old version or the new one, never a mix. Answers in
    flight keep the backend they started with."""
    if not model_version_policy.user_has_permission(actor, "activate"):
        raise PermissionDenied
    if version is not None and not model_version_policy.user_has_permission_for_instance(actor, "activate", version):
        raise PermissionDenied
    # Serialize activations: the row lock on the newest activation makes "previous" exact.
    current = ModelActivation.objects.select_for_update().order_by("-id").first()
    active = current.version if current else None
    gate = {"passed": True, "reason": "deactivation", "comparisons": []}
    if version is not None:
        gate = activation_gate(version=version, active=active)
        if not gate["passed"]:
            if not reason.strip():
                raise ActivationRefused(
                    _("Activation refused: evaluations are not at least as good as the active version's (%(reason)s). "
                      "An admin may override with a reason.") % {"reason": gate_for(user=actor, gate=gate)["reason"]}
                )
            if not model_version_policy.user_has_permission(actor, "override_gate"):
                raise PermissionDenied("Only an admin may override the evaluation gate.")
    activation = ModelActivation.objects.create(
        version=version, previous=active, reason=reason.strip(), gate=gate,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_log(
        actor=actor, action=action if gate["passed"] else "model_version_activate_override",
        obj=version or active, version_id=version.pk if version else None,
        previous_version_id=active.pk if active else None, reason=reason.strip(), gate=gate,
    )
    return activation


@transaction.atomic
def model_version_restore_previous(*, actor: Any) -> ModelActivation:
    """One click back to the version that was active before (no gate: it was already serving)."""
    if not model_version_policy.user_has_permission(actor, "activate"):
        raise PermissionDenied
    current = ModelActivation.objects.select_for_update().order_by("-id").first()
    if current is None or current.previous is None and current.version is None:
        raise ValidationError("There is no previous version to restore.")
    if current.previous is not None and not model_version_policy.user_has_permission_for_instance(
        actor, "activate", current.previous
    ):
        raise PermissionDenied
    activation = ModelActivation.objects.create(
        version=current.previous, previous=current.version, reason="restore previous",
        gate={"passed": True, "reason": "restore", "comparisons": []},
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_log(actor=actor, action="model_version_restore", obj=current.previous or current.version,
              version_id=current.previous_id, previous_version_id=current.version_id)
    return activation
