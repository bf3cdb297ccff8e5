"""Who may read, edit and review knowledge: the one place that says it.

Every read filter is a lazy queryset, so views, the API, exports and the vector/BM25 search use
the same rule as an SQL filter: `chunk.version_id IN (version_policy.instances...)`.

- Read a knowledge base: members of its department (any role), of the departments it is shared
  with, everyone when shared company-wide (users without a department included), reviewers
  covering its department, guardian grants.
- Edit (add/change/submit/rollback/archive/restore, take over an expired edit lock): knowledge managers and admins of the owning department.
- Review (approve/request changes): compliance reviewers covering the owning department.
- Break someone's edit lock: admins of the owning department and company admins.
- Documents: plain readers see published documents (a live version, not archived); editors and
  reviewers of the owning department ("privileged") see every document, drafts included.
- Versions: whoever may read a document may open every version of it that was ever published
  (live now or before: a `VersionPublication` row, or the live pointer); drafts, versions in
  review and versions sent back stay with its editors and reviewers.
- Chunks follow their version (`chunk_policy`); search returns the `searchable` ones of those.
- Reviews: editors and reviewers of the owning department; reviewers decide.
- Audit rows: reviewers covering the row's department, and company admins.

Pages and serializers ask `KnowledgeAccess` (one per request) what to show about a document:
its state, latest version and edit lock as this user may know them. Without an acting user it
answers as to a reader: no draft number, state or editor's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, CharField, F, Q, QuerySet, Value, When

from accounts.policy import (
    Capability,
    PermissionPolicy,
    departments_for,
    is_active_user,
    is_company_admin,
    user_has_capability,
)
from core.models import AuditEntry

from .models import (
    Chunk,
    Document,
    DocumentState,
    DocumentVersion,
    KnowledgeBase,
    Review,
    VersionPublication,
)

EDIT_ACTIONS = frozenset({"add", "change", "submit", "rollback", "archive", "restore"})


def _editable_departments(user: Any):
    return departments_for(user, Capability.MANAGE_KNOWLEDGE)


def _reviewable_departments(user: Any):
    return departments_for(user, Capability.REVIEW_KNOWLEDGE)


def _lock_breaking_departments(user: Any):
    # Department admins and company admins (who hold manage_members everywhere).
    return departments_for(user, Capability.MANAGE_MEMBERS)


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

    def user_may_browse(self, user: Any) -> bool:
        """May open the knowledge pages: reads some department's knowledge, or at least one
        knowledge base (one shared company-wide reaches users without any membership)."""
        return departments_for(user, Capability.VIEW_KNOWLEDGE).exists() or self.user_has_permission(user, "view")

    def departments_user_may_add_in(self, user: Any):
        """The departments in which `user` may create knowledge bases (a queryset)."""
        return _editable_departments(user)

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
    actions = frozenset({"view", "review", "break_lock"}) | EDIT_ACTIONS

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
        if action == "break_lock":
            return Document.objects.filter(knowledge_base__department__in=_lock_breaking_departments(user)).filter(
                Q(knowledge_base__department__in=_editable_departments(user))
                | Q(knowledge_base__department__in=_reviewable_departments(user))
            )
        return Document.objects.filter(knowledge_base__department__in=_editable_departments(user))


    def with_visible_state(self, queryset: QuerySet[Document], user: Any) -> QuerySet[Document]:
        """Annotate `visible_state`: the state as `user` may know it (readers: "published"), so
        that filtering and sorting by state tell a reader nothing about drafts."""
        privileged = Q(knowledge_base__department__in=_editable_departments(user)) | Q(
            knowledge_base__department__in=_reviewable_departments(user)
        )
        return queryset.annotate(
            visible_state=Case(
                When(privileged, then=F("state")),
                When(Q(live_version__isnull=False) & ~Q(state=DocumentState.ARCHIVED), then=Value(DocumentState.PUBLISHED)),
                default=Value(""),
                output_field=CharField(),
            )
        )


class DocumentVersionPolicy(PermissionPolicy[DocumentVersion]):
    """Versions are never changed: the only action is reading. Whoever reads a document opens
    every version of it that was ever published; editors and reviewers open all of them."""

    model = DocumentVersion
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[DocumentVersion]:
        self._check_action(action)
        if not is_active_user(user):
            return DocumentVersion.objects.none()
        privileged_departments = Q(document__knowledge_base__department__in=_editable_departments(user)) | Q(
            document__knowledge_base__department__in=_reviewable_departments(user)
        )
        visible_documents = document_policy.instances_user_has_permission_for(user, "view")
        # The live pointer counts too: it is published by definition, whatever wrote it.
        published = Q(pk__in=VersionPublication.objects.values("version_id")) | Q(
            pk__in=visible_documents.filter(live_version__isnull=False).values("live_version_id")
        )
        return DocumentVersion.objects.filter(Q(document__in=visible_documents) & (published | privileged_departments))


class ChunkPolicy(PermissionPolicy[Chunk]):
    """Chunks follow their version: a user reads the chunks of the versions they may open (a chat
    citation of an old published version keeps opening). `search`: of those, the ones search may
    return, i.e. flagged `searchable` (the live version's, once indexed; the pipeline keeps the
    flag). retrieval.search filters by `knowledge_base_policy.readable_ids` and the flag in raw
    SQL; a test holds it equal to this queryset over the whole permission matrix."""

    model = Chunk
    actions = frozenset({"view", "search"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Chunk]:
        self._check_action(action)
        if not is_active_user(user):
            return Chunk.objects.none()
        chunks = Chunk.objects.filter(version__in=version_policy.instances_user_has_permission_for(user, "view"))
        if action == "search":
            chunks = chunks.filter(searchable=True)
        return chunks


class ReviewPolicy(PermissionPolicy[Review]):
    """Reviews are seen by the editors and reviewers of the owning department; reviewers decide."""

    model = Review
    actions = frozenset({"view", "review"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        """May `user` follow reviews ('view': editors and reviewers) or decide them ('review')
        in at least one department, whether or not a review exists yet."""
        self._check_action(action)
        if action == "review":
            return _reviewable_departments(user).exists()
        return _reviewable_departments(user).exists() or _editable_departments(user).exists()

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

    def compliance_departments(self, user: Any):
        """The departments whose audit trail `user` works with on the compliance pages."""
        return _reviewable_departments(user)

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
chunk_policy = ChunkPolicy()
review_policy = ReviewPolicy()
audit_entry_policy = AuditEntryPolicy()


# --- what a page may tell one user about a document ------------------------------------------------


@dataclass(frozen=True)
class DocumentFacts:
    """A document as one user may know it. For a reader: the published state and the live version
    as the latest one; for editors and reviewers of its department: the truth. (The edit lock is
    `KnowledgeAccess.edit_lock`, asked by the pages that show it: a list would pay a query a row.)"""

    state: str | None
    state_display: str
    latest_version: DocumentVersion | None
    live_version: DocumentVersion | None
    sees_drafts: bool


@dataclass(frozen=True)
class KnowledgeAccess:
    """The acting user's rights per department, evaluated once, so that a list of documents asks
    per row without a query. `knowledge_access(None)` is a reader of nothing: fail closed."""

    user_id: int | None
    edit_department_ids: frozenset[int] = frozenset()
    review_department_ids: frozenset[int] = frozenset()
    lock_break_department_ids: frozenset[int] = frozenset()

    @staticmethod
    def _department_id(document: Document) -> int:
        return document.knowledge_base.department_id

    def sees_drafts(self, document: Document) -> bool:
        department = self._department_id(document)
        return department in self.edit_department_ids or department in self.review_department_ids

    def may_edit(self, document: Document) -> bool:
        return document.state != DocumentState.ARCHIVED and self._department_id(document) in self.edit_department_ids

    def may_restore(self, document: Document) -> bool:
        return document.state == DocumentState.ARCHIVED and self._department_id(document) in self.edit_department_ids

    def may_take_over_lock(self, document: Document) -> bool:
        return self._department_id(document) in self.edit_department_ids

    def may_review(self, document: Document) -> bool:
        return self._department_id(document) in self.review_department_ids

    def may_break_lock(self, document: Document) -> bool:
        return self.sees_drafts(document) and self._department_id(document) in self.lock_break_department_ids

    def state(self, document: Document) -> str | None:
        if self.sees_drafts(document):
            return document.state
        return DocumentState.PUBLISHED if document.is_published else None

    def latest_version(self, document: Document) -> DocumentVersion | None:
        """The newest version this user may open: a reader's is the live one."""
        if self.sees_drafts(document):
            return document.latest_version
        return document.live_version if document.is_published else None

    def edit_lock(self, document: Document):
        """Who is editing is the editors' and reviewers' business only."""
        return getattr(document, "edit_lock", None) if self.sees_drafts(document) else None

    def facts(self, document: Document) -> DocumentFacts:
        state = self.state(document)
        return DocumentFacts(
            state=state,
            state_display=DocumentState(state).label if state else "",
            latest_version=self.latest_version(document),
            live_version=document.live_version if document.is_published or self.sees_drafts(document) else None,
            sees_drafts=self.sees_drafts(document),
        )


def knowledge_access(user: Any) -> KnowledgeAccess:
    if not is_active_user(user):
        return KnowledgeAccess(user_id=None)

    def ids(departments) -> frozenset[int]:
        return frozenset(departments.values_list("pk", flat=True))

    return KnowledgeAccess(
        user_id=user.pk,
        edit_department_ids=ids(_editable_departments(user)),
        review_department_ids=ids(_reviewable_departments(user)),
        lock_break_department_ids=ids(_lock_breaking_departments(user)),
    )


def request_knowledge_access(request: Any) -> KnowledgeAccess:
    """The acting user's access, computed once per request (views, serializers and template tags
    share it); no request or no user: a reader of nothing."""
    user = getattr(request, "user", None)
    cached = getattr(request, "_knowledge_access", None)
    if cached is None or cached.user_id != getattr(user, "pk", None) or not is_active_user(user):
        cached = knowledge_access(user)
        if request is not None:
            request._knowledge_access = cached
    return cached
