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
