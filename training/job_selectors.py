"""Every read about fine-tuning jobs, model versions and evaluations, scoped by the acting user."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from llm.base import ActiveModel

from .models import Evaluation, FineTuningEvent, FineTuningJob, ModelActivation, ModelVersion, ModelVersionKind
from .policy_jobs import evaluation_policy, fine_tuning_job_policy, model_version_policy


def fine_tuning_job_list(*, user: Any) -> QuerySet[FineTuningJob]:
    return fine_tuning_job_policy.instances_user_has_permission_for(user, "view").select_related(
        "run_job", "validation_job", "dataset_version__dataset", "fine_tuned_model"
    )


def fine_tuning_job_get(*, user: Any, pk: Any, action: str = "view") -> FineTuningJob:
    return fine_tuning_job_policy.instance_for_user(user, action, pk)


def model_version_visible(*, user: Any, pk: int | None) -> bool:
    """Whether `user` may see model version `pk` (a job's or a version's parent they may not see is
    shown as hidden: its name is another department's)."""
    return pk is not None and model_version_policy.instances_user_has_permission_for(user, "view").filter(pk=pk).exists()


def model_version_visible_ids(*, user: Any) -> set[int]:
    """The ids of every model version `user` may see (one query, for a list that names parents)."""
    return set(model_version_policy.instances_user_has_permission_for(user, "view").values_list("pk", flat=True))


def fine_tuning_event_list(*, job: FineTuningJob, after: int = 0, limit: int = 1000) -> list[FineTuningEvent]:
    return list(job.events.filter(id__gt=after).order_by("id")[:limit])


def model_version_list(*, user: Any) -> QuerySet[ModelVersion]:
    """With `visible_evaluations`: each version's evaluations that `user` may see, newest first."""
    visible_evaluations = Prefetch("evaluations", queryset=evaluation_list(user=user), to_attr="visible_evaluations")
    versions = model_version_policy.instances_user_has_permission_for(user, "view")
    return versions.select_related("job").prefetch_related(visible_evaluations)


def model_version_get(*, user: Any, pk: Any, action: str = "view") -> ModelVersion:
    return model_version_policy.instance_for_user(user, action, pk)


def evaluation_list(*, user: Any) -> QuerySet[Evaluation]:
    return evaluation_policy.instances_user_has_permission_for(user, "view").select_related(
        "model_version", "job", "dataset_version__dataset"
    )


def evaluation_get(*, user: Any, pk: Any) -> Evaluation:
    """With `rag_samples_readable` (see evaluation_rag_samples)."""
    evaluation = evaluation_policy.instance_for_user(user, "view", pk)
    same = Evaluation.objects.filter(pk=evaluation.pk).select_related("model_version", "dataset_version", "job")
    return evaluation_policy.with_rag_samples_readable(user, same).get()


def evaluation_rag_samples(evaluation: Evaluation) -> list[dict] | None:
    """The RAG samples the viewer may read; None when withheld. Only an evaluation read with
    `rag_samples_readable` (evaluation_get, the API) may show them."""
    if not getattr(evaluation, "rag_samples_readable", False):
        return None
    return (evaluation.metrics or {}).get("rag_samples") or []


def evaluation_metrics_shown(evaluation: Evaluation) -> dict:
    """The metrics without the RAG samples when the viewer may not read them (then marked withheld)."""
    metrics = dict(evaluation.metrics or {})
    if "rag_samples" in metrics and evaluation_rag_samples(evaluation) is None:
        del metrics["rag_samples"]
        metrics["rag_samples_withheld"] = True
    return metrics


def activation_history(*, user: Any, limit: int = 20) -> list[ModelActivation]:
    """The activations whose versions (the new one and the previous one) `user` may see."""
    if not model_version_policy.user_has_permission(user, "view"):
        return []
    visible = model_version_policy.instances_user_has_permission_for(user, "view")
    return list(
        ModelActivation.objects.filter(Q(version__isnull=True) | Q(version__in=visible))
        .filter(Q(previous__isnull=True) | Q(previous__in=visible))
        .select_related("version", "previous", "actor").order_by("-id")[:limit]
    )


_serving_override: ContextVar[ModelVersion | None] = ContextVar("training_serving_override", default=None)


@contextlib.contextmanager
def model_version_serving(version: ModelVersion):
    """Within this block (this thread or task only), the chat's fine-tuned backend serves `version`
    instead of the active one: the RAG evaluation asks the real chat pipeline with that version."""
    token = _serving_override.set(version)
    try:
        yield
    finally:
        _serving_override.reset(token)


def _as_active_model(version: ModelVersion) -> ActiveModel:
    return ActiveModel(
        version_id=version.pk,
        base_model_path=version.model_dir,
        adapter_path=version.adapter_path or None if version.kind == ModelVersionKind.ADAPTER else None,
        chat_template=version.chat_template or None,
        chat_template_sha256=version.chat_template_sha256 or None,
    )


def active_model_for_chat() -> ActiveModel | None:
    """The resolver registered with llm.base: the newest activation's version, read in one query
    (or the version an evaluation is serving in this context)."""
    override = _serving_override.get()
    if override is not None:
        return _as_active_model(override)
    activation = ModelActivation.objects.select_related("version").order_by("-id").first()
    version = activation.version if activation else None
    if version is None:
        return None
    return _as_active_model(version)
