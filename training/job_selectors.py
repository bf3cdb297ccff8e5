"""Every read about fine-tuning jobs, model versions and evaluations, scoped by the acting user."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

from django.db.models import QuerySet

from llm.base import ActiveModel

from .models import Evaluation, FineTuningEvent, FineTuningJob, ModelActivation, ModelVersion, ModelVersionKind
from .policy_jobs import evaluation_policy, fine_tuning_job_policy, model_version_policy


def fine_tuning_job_list(*, user: Any) -> QuerySet[FineTuningJob]:
    return fine_tuning_job_policy.instances_user_has_permission_for(user, "view").select_related(
        "run_job", "validation_job", "dataset_version__dataset", "fine_tuned_model"
    )


def fine_tuning_job_get(*, user: Any, pk: Any, action: str = "view") -> FineTuningJob:
    return fine_tuning_job_policy.instance_for_user(user, action, pk)


def fine_tuning_event_list(*, job: FineTuningJob, after: int = 0, limit: int = 1000) -> list[FineTuningEvent]:
    return list(job.events.filter(id__gt=after).order_by("id")[:limit])


def model_version_list(*, user: Any) -> QuerySet[ModelVersion]:
    return model_version_policy.instances_user_has_permission_for(user, "view").select_related("job")


def model_version_get(*, user: Any, pk: Any, action: str = "view") -> ModelVersion:
    return model_version_policy.instance_for_user(user, action, pk)


def evaluation_list(*, user: Any) -> QuerySet[Evaluation]:
    return evaluation_policy.instances_user_has_permission_for(user, "view").select_related("model_version", "job", "dataset_version")


def evaluation_get(*, user: Any, pk: Any) -> Evaluation:
    return evaluation_policy.instance_for_user(user, "view", pk)


def activation_history(*, user: Any, limit: int = 20) -> list[ModelActivation]:
    if not model_version_policy.user_has_permission(user, "view"):
        return []
    return list(ModelActivation.objects.select_related("version", "previous", "actor").order_by("-id")[:limit])


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
