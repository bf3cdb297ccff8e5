"""Who may see and run fine-tuning jobs, model versions and evaluations (the datasets' rules in
training/policy.py decide the rest: a job is visible only with its training file)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.policy import PermissionPolicy, is_active_user, is_company_admin

from .models import Evaluation, FineTuningJob, ModelVersion, ModelVersionKind
from .policy import dataset_policy, has_global_training, user_may_use_training


class FineTuningJobPolicy(PermissionPolicy[FineTuningJob]):
    """A job is visible to whoever may see its training file; the same users may start and cancel."""

    model = FineTuningJob
    actions = frozenset({"view", "add", "change"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        return user_may_use_training(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[FineTuningJob]:
        self._check_action(action)
        if not is_active_user(user):
            return FineTuningJob.objects.none()
        datasets = dataset_policy.instances_user_has_permission_for(user, "view")
        return FineTuningJob.objects.filter(dataset_version__dataset__in=datasets)


class ModelVersionPolicy(PermissionPolicy[ModelVersion]):
    """Base models are visible to every training user; a trained version to those who see its job.
    The active model serves the whole company, so only company-wide training users activate."""

    model = ModelVersion
    actions = frozenset({"view", "evaluate", "activate", "override_gate"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "activate":
            return has_global_training(user)
        if action == "override_gate":
            return is_company_admin(user)
        return user_may_use_training(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[ModelVersion]:
        self._check_action(action)
        if not self.user_has_permission(user, action):
            return ModelVersion.objects.none()
        if has_global_training(user):
            return ModelVersion.objects.all()
        jobs = fine_tuning_job_policy.instances_user_has_permission_for(user, "view")
        return ModelVersion.objects.filter(Q(kind=ModelVersionKind.BASE) | Q(job__in=jobs))


class EvaluationPolicy(PermissionPolicy[Evaluation]):
    model = Evaluation
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Evaluation]:
        self._check_action(action)
        versions = model_version_policy.instances_user_has_permission_for(user, "view")
        datasets = dataset_policy.instances_user_has_permission_for(user, "view")
        return Evaluation.objects.filter(model_version__in=versions, dataset_version__dataset__in=datasets)


fine_tuning_job_policy = FineTuningJobPolicy()
model_version_policy = ModelVersionPolicy()
evaluation_policy = EvaluationPolicy()
