"""Who may see and run fine-tuning jobs, model versions and evaluations (the datasets' rules in
training/policy.py decide the rest: a job is visible only with its training file)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

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
    """Base models are visible to every training user; a trained version to those who see its job
    (for every action: evaluating, continuing from or activating it); a version without a job (imported,
    or its job deleted) to company-wide training users only. The active model serves the whole company, so
    only company-wide training users activate."""

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
        jobs = fine_tuning_job_policy.instances_user_has_permission_for(user, "view")
        visible = Q(kind=ModelVersionKind.BASE) | Q(job__in=jobs)
        if has_global_training(user):
            visible |= Q(job__isnull=True)
        return ModelVersion.objects.filter(visible)


class EvaluationPolicy(PermissionPolicy[Evaluation]):
    """An evaluation is visible with its model version and its dataset. Its RAG samples quote passages
    retrieved as its author: they are shown only to whoever may read every knowledge base they drew on."""

    model = Evaluation
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Evaluation]:
        self._check_action(action)
        versions = model_version_policy.instances_user_has_permission_for(user, "view")
        datasets = dataset_policy.instances_user_has_permission_for(user, "view")
        return Evaluation.objects.filter(model_version__in=versions, dataset_version__dataset__in=datasets)

    def with_rag_samples_readable(self, user: Any, queryset: QuerySet[Evaluation]) -> QuerySet[Evaluation]:
        """`queryset` annotated with `rag_samples_readable` (not on the policy's own queryset: an
        annotated queryset cannot be used as an `__in` subquery)."""
        from knowledge.policy import knowledge_base_policy

        readable = knowledge_base_policy.instances_user_has_permission_for(user, "view")
        unreadable = Evaluation.rag_knowledge_bases.through.objects.filter(evaluation=OuterRef("pk")).exclude(
            knowledgebase__in=readable
        )
        return queryset.annotate(rag_samples_readable=~Exists(unreadable))


fine_tuning_job_policy = FineTuningJobPolicy()
model_version_policy = ModelVersionPolicy()
evaluation_policy = EvaluationPolicy()
