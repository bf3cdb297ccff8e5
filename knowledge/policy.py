"""Who may read, edit and review knowledge: the one place that says it.

Every read filter is a lazy queryset, so views, the API, exports and (later) the vector/BM25
search use the same rule as an SQL filter: `chunk.version_id IN (version_policy.instances...)`.

- Read a knowledge base: members of its department (any role), of the departments it is shared
  with, everyone when shared company-wide, reviewers covering its department, guardian grants.
- Edit (add/change/submit/rollback/archive): knowledge managers and admins of the owning department.
- Review (approve/request changes): compliance reviewers covering the owning department.
- Plain readers see published documents and their live version only; editors and reviewers of
  the owning department see drafts and the whole history.
- Audit rows: reviewers covering the row's department, and company admins.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.policy import (
    Capability,
    PermissionPolicy,
    departments_for,
    is_active_user,
    is_company_admin,
    user_has_capability,
)
from core.models import AuditEntry

from .models import Document, DocumentState, DocumentVersion, KnowledgeBase, Review

EDIT_ACTIONS = frozenset({"add", "change", "submit", "rollback", "archive"})


def _editable_departments(user: Any):
    return departments_for(user, Capability.MANAGE_KNOWLEDGE)


def _reviewable_departments(user: Any):
    return departments_for(user, Capability.REVIEW_KNOWLEDGE)


def _readable_by(departments) -> Q:
    """Knowledge bases that members of `departments` (a queryset or a list of ids) may read."""
    shared = KnowledgeBase.shared_with.through.objects.filter(department__in=departments).values("knowledgebase_id")
    return Q(department__in=departments) | Q(pk__in=shared) | Q(shared_company_wide=True)


class KnowledgeBasePolicy(PermissionPolicy[KnowledgeBase]):
    model = KnowledgeBase
    actions = frozenset({"view", "add", "change", "review"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return _editable_departments(user).exists()
        return super().user_has_permission(user, action)

    def user_may_add_in(self, user: Any, department: Any) -> bool:
        return user_has_capability(user, Capability.MANAGE_KNOWLEDGE, department)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[KnowledgeBase]:
        self._check_action(action)
        if not is_active_user(user):
            return KnowledgeBase.objects.none()
        if action == "view":
            return KnowledgeBase.objects.filter(_readable_by(departments_for(user, Capability.VIEW_KNOWLEDGE)))
        if action == "review":
            return KnowledgeBase.objects.filter(department__in=_reviewable_departments(user))
        return KnowledgeBase.objects.filter(department__in=_editable_departments(user))

    def readable_ids(self, user: Any) -> list[int]:
        """The ids of the knowledge bases `user` may read, evaluated now: the same rule as
        `instances_user_has_permission_for(user, "view")`, run as two flat queries (departments,
        then knowledge bases) instead of one nested one, which Django takes ~10 ms to build.
        Search evaluates it once per query; it is never cached across requests."""
        if not is_active_user(user):
            return []
        departments = list(departments_for(user, Capability.VIEW_KNOWLEDGE).values_list("pk", flat=True))
        return list(KnowledgeBase.objects.filter(_readable_by(departments)).values_list("pk", flat=True))


class DocumentPolicy(PermissionPolicy[Document]):
    model = Document
    actions = frozenset({"view", "review"}) | EDIT_ACTIONS

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return _editable_departments(user).exists()
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Document]:
        self._check_action(action)
        if not is_active_user(user):
            return Document.objects.none()
        if action == "view":
            readable = knowledge_base_policy.instances_user_has_permission_for(user, "view")
            privileged = Q(knowledge_base__department__in=_editable_departments(user)) | Q(
                knowledge_base__department__in=_reviewable_departments(user)
            )
            published = Q(live_version__isnull=False) & ~Q(state=DocumentState.ARCHIVED)
            return Document.objects.filter(Q(knowledge_base__in=readable) & (privileged | published))
        if action == "review":
            return Document.objects.filter(knowledge_base__department__in=_reviewable_departments(user))
        return Document.objects.filter(knowledge_base__department__in=_editable_departments(user))


class DocumentVersionPolicy(PermissionPolicy[DocumentVersion]):
    """Versions are never changed: the only action is reading."""

    model = DocumentVersion
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[DocumentVersion]:
        self._check_action(action)
        if not is_active_user(user):
            return DocumentVersion.objects.none()
        privileged_departments = Q(document__knowledge_base__department__in=_editable_departments(user)) | Q(
            document__knowledge_base__department__in=_reviewable_departments(user)
        )
        # Everyone who can read a document reads its live version; editors and reviewers read all.
        visible_documents = document_policy.instances_user_has_permission_for(user, "view")
        return DocumentVersion.objects.filter(
            Q(pk__in=visible_documents.filter(live_version__isnull=False).values("live_version_id"))
            | (Q(document__in=visible_documents) & privileged_departments)
        )


class ReviewPolicy(PermissionPolicy[Review]):
    """Reviews are seen by the editors and reviewers of the owning department; reviewers decide."""

    model = Review
    actions = frozenset({"view", "review"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Review]:
        self._check_action(action)
        if not is_active_user(user):
            return Review.objects.none()
        reviewable = Q(document__knowledge_base__department__in=_reviewable_departments(user))
        if action == "review":
            return Review.objects.filter(reviewable)
        editable = Q(document__knowledge_base__department__in=_editable_departments(user))
        return Review.objects.filter(reviewable | editable)


class AuditEntryPolicy(PermissionPolicy[AuditEntry]):
    """Audit rows are read by reviewers covering the row's department and by company admins."""

    model = AuditEntry
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[AuditEntry]:
        self._check_action(action)
        if not is_active_user(user):
            return AuditEntry.objects.none()
        if is_company_admin(user):
            return AuditEntry.objects.all()
        return AuditEntry.objects.filter(department__in=_reviewable_departments(user))


knowledge_base_policy = KnowledgeBasePolicy()
document_policy = DocumentPolicy()
version_policy = DocumentVersionPolicy()
review_policy = ReviewPolicy()
audit_entry_policy = AuditEntryPolicy()
