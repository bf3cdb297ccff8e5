"""Every read of datasets, taking the acting user."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Dataset, DatasetRow, DatasetVersion
from .policy import dataset_policy, dataset_version_policy, training_departments


def dataset_list(*, user: Any) -> QuerySet[Dataset]:
    return dataset_policy.instances_user_has_permission_for(user, "view").select_related(
        "department", "latest_version"
    )


def dataset_get(*, user: Any, pk: Any, action: str = "view") -> Dataset:
    return dataset_policy.instance_for_user(user, action, pk)


def dataset_versions(*, user: Any, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset_version_policy.instances_user_has_permission_for(user, "view").filter(dataset=dataset).select_related(
        "created_by"
    )


def dataset_version_get(*, user: Any, dataset_pk: Any, number: Any) -> DatasetVersion:
    versions = dataset_version_policy.instances_user_has_permission_for(user, "view")
    try:
        pk = versions.filter(dataset_id=int(dataset_pk), number=int(number)).values_list("pk", flat=True)[0]
    except (IndexError, ValueError, TypeError):
        pk = None
    return dataset_version_policy.instance_for_user(user, "view", pk)


def dataset_rows(*, user: Any, version: DatasetVersion) -> QuerySet[DatasetRow]:
    if not dataset_version_policy.user_has_permission_for_instance(user, "view", version):
        return DatasetRow.objects.none()
    return DatasetRow.objects.filter(version=version).order_by("index")


def dataset_departments(*, user: Any):
    return training_departments(user).order_by("name")


def chat_feedback_records(*, user: Any, since=None, limit: int = 5000) -> tuple[list[dict], int]:
    """Chat feedback in the shape of training.datasets.feedback, scoped by permission: only feedback
    whose every retrieved chunk `user` may read (a row grounded on knowledge they cannot read is left
    out, with the count returned), so a dataset built from it cannot carry another department's text.
    Returns (records, withheld)."""
    from chat.models import Feedback
    from knowledge.models import Chunk
    from knowledge.policy import chunk_policy

    feedback = Feedback.objects.select_related("message").order_by("pk")
    if since is not None:
        feedback = feedback.filter(updated_at__gte=since)
    feedback = list(feedback[:limit])
    wanted = {int(i) for f in feedback for i in (f.retrieved_chunk_ids or []) if isinstance(i, int)}
    readable = set(chunk_policy.instances_user_has_permission_for(user, "view").filter(pk__in=wanted).values_list("pk", flat=True))
    chunks = {c.pk: c for c in Chunk.objects.filter(pk__in=readable).only("pk", "text", "version_id", "knowledge_base_id")}
    records, withheld = [], 0
    for f in feedback:
        ids = [int(i) for i in (f.retrieved_chunk_ids or []) if isinstance(i, int)]
        if any(i not in chunks for i in ids):
            withheld += 1
            continue
        records.append({
            "id": f.pk, "question": f.question, "answer": f.answer, "correction": f.correction,
            "thumbs": "up" if f.rating > 0 else "down",
            "context": [{"id": i, "text": chunks[i].text, "version_id": chunks[i].version_id,
                         "knowledge_base_id": chunks[i].knowledge_base_id} for i in ids],
        })
    return records, withheld


def distillation_teachers(*, user: Any):
    """The model endpoints a teacher may be (enabled, OpenAI-compatible), for a user who may build
    datasets somewhere; their names and models only are shown, never their keys."""
    from chat.models import ModelEndpoint

    if not training_departments(user).exists():
        return ModelEndpoint.objects.none()
    return ModelEndpoint.objects.filter(enabled=True, kind="openai").order_by("name")


def distillation_prompts(*, user: Any, version: DatasetVersion) -> list[str]:
    """The last user turn of every row of a version `user` may see (e.g. the questions of the
    knowledge base's QA pairs): the prompts a teacher answers."""
    return [row.prompt for row in dataset_rows(user=user, version=version) if row.prompt.strip()]
