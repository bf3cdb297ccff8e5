"""Who may use training: the one place that says it.

- Superusers, company admins and ML engineers (the global permission `training.use_training`)
  see and edit the training objects of every department.
- A department's admins (Role.ADMIN membership) see and edit their department's datasets.
- A dataset whose rows hold knowledge text (generated from the knowledge base, or from chat
  feedback with its retrieved context) is seen only by those who may also read every one of its
  source knowledge bases: training access never widens knowledge access.
- Everyone else sees nothing (missing and forbidden both answer 404).

Jobs and model versions should scope by the same `training_departments(user)`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Department, Membership, Role
from accounts.policy import PermissionPolicy, is_active_user, is_company_admin

from .models import Dataset, DatasetVersion

USE_TRAINING = "training.use_training"


def has_global_training(user: Any) -> bool:
    return is_active_user(user) and (is_company_admin(user) or user.has_perm(USE_TRAINING))


def training_departments(user: Any) -> QuerySet[Department]:
    """The departments whose training objects `user` may see and edit."""
    if not is_active_user(user):
        return Department.objects.none()
    if has_global_training(user):
        return Department.objects.all()
    admin_of = Membership.objects.filter(user=user, role=Role.ADMIN).values("department_id")
    return Department.objects.filter(pk__in=admin_of)


def user_may_use_training(user: Any) -> bool:
    return has_global_training(user) or training_departments(user).exists()


class DatasetPolicy(PermissionPolicy[Dataset]):
    model = Dataset
    actions = frozenset({"view", "add", "change"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        return user_may_use_training(user)

    def user_may_add_in(self, user: Any, department: Department | int) -> bool:
        department_id = department if isinstance(department, int) else department.pk
        return training_departments(user).filter(pk=department_id).exists()

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Dataset]:
        self._check_action(action)
        if not is_active_user(user):
            return Dataset.objects.none()
        from knowledge.models import KnowledgeBase
        from knowledge.policy import knowledge_base_policy

        datasets = Dataset.objects.all() if has_global_training(user) else Dataset.objects.filter(
            department__in=training_departments(user)
        )
        unreadable = KnowledgeBase.objects.exclude(pk__in=knowledge_base_policy.instances_user_has_permission_for(user, "view"))
        return datasets.exclude(source_knowledge_bases__in=unreadable)


class DatasetVersionPolicy(PermissionPolicy[DatasetVersion]):
    """Versions are immutable: reading them is the only action (changes make new versions)."""

    model = DatasetVersion
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[DatasetVersion]:
        self._check_action(action)
        return DatasetVersion.objects.filter(dataset__in=dataset_policy.instances_user_has_permission_for(user, "view"))


dataset_policy = DatasetPolicy()
dataset_version_policy = DatasetVersionPolicy()
