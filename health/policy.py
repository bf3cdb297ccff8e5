"""Who sees which health findings: built on the knowledge policy, nowhere else.

- A conflict is visible to the knowledge managers and reviewers of either side's department; the
  text of a side is shown only when the user may read that side's passage (`chunk_policy`), so a
  pair across departments reaches each side's managers without the other side's words.
- A change not carried over is visible to the managers and reviewers of the passage that may still
  state the old value (its owners); the changed document's text follows the same read rule.
- Dismissing (and marking reviewed) needs `manage_knowledge` in the department concerned.
- A question the knowledge did not answer (a gap) is visible to whoever may manage (`change`) one
  of the knowledge bases it was asked against, and to nobody else: a manager of an unrelated
  department never sees another department's employee's question. A group is visible through its
  visible questions only; its counts and examples are of those.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.policy import Capability, PermissionPolicy, departments_for, is_active_user
from knowledge.policy import chunk_policy, document_policy
from knowledge.selectors import managed_knowledge_bases

from .models import CarryOver, Conflict, GapGroup, GapQuestion


def health_departments(user: Any):
    """Departments whose knowledge health `user` watches: where they manage or review knowledge."""
    return departments_for(user, Capability.MANAGE_KNOWLEDGE) | departments_for(user, Capability.REVIEW_KNOWLEDGE)


def user_may_watch(user: Any) -> bool:
    return is_active_user(user) and health_departments(user).exists()


class ConflictPolicy(PermissionPolicy[Conflict]):
    model = Conflict
    actions = frozenset({"view", "change"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Conflict]:
        self._check_action(action)
        if not is_active_user(user):
            return Conflict.objects.none()
        if action == "view":
            departments = health_departments(user).values("pk")
        else:
            departments = departments_for(user, Capability.MANAGE_KNOWLEDGE).values("pk")
        return Conflict.objects.filter(
            Q(document_a__knowledge_base__department__in=departments)
            | Q(document_b__knowledge_base__department__in=departments)
        )


class CarryOverPolicy(PermissionPolicy[CarryOver]):
    model = CarryOver
    actions = frozenset({"view", "change"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[CarryOver]:
        self._check_action(action)
        if not is_active_user(user):
            return CarryOver.objects.none()
        capability = health_departments(user) if action == "view" else departments_for(user, Capability.MANAGE_KNOWLEDGE)
        return CarryOver.objects.filter(document__knowledge_base__department__in=capability.values("pk"))


def readable_chunk_ids(user: Any, chunk_ids) -> set[int]:
    """Which of these passages `user` may read (one query)."""
    return set(chunk_policy.instances_user_has_permission_for(user, "view").filter(pk__in=list(chunk_ids)).values_list("pk", flat=True))


def readable_document_ids(user: Any, document_ids) -> set[int]:
    return set(document_policy.instances_user_has_permission_for(user, "view").filter(pk__in=list(document_ids)).values_list("pk", flat=True))


class GapQuestionPolicy(PermissionPolicy[GapQuestion]):
    model = GapQuestion
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[GapQuestion]:
        self._check_action(action)
        if not is_active_user(user):
            return GapQuestion.objects.none()
        return GapQuestion.objects.filter(
            knowledge_bases__overlap=list(managed_knowledge_bases(user=user).values_list("pk", flat=True)))


class GapGroupPolicy(PermissionPolicy[GapGroup]):
    model = GapGroup
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[GapGroup]:
        self._check_action(action)
        visible = gap_question_policy.instances_user_has_permission_for(user, "view")
        return GapGroup.objects.filter(pk__in=visible.values("group"))


conflict_policy = ConflictPolicy()
carry_over_policy = CarryOverPolicy()
gap_question_policy = GapQuestionPolicy()
gap_group_policy = GapGroupPolicy()
