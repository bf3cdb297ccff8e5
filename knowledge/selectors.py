"""Every read of knowledge that a page, the API, an export or a task needs. Each takes the acting
user and filters through the policy; a hidden object answers Http404 exactly like a missing one."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import Http404

from core.models import AuditEntry

from .models import Chunk, Document, DocumentState, DocumentVersion, KnowledgeBase, Review, ReviewState
from .policy import (
    audit_entry_policy,
    chunk_policy,
    document_policy,
    knowledge_base_policy,
    review_policy,
    version_policy,
)

DOCUMENT_ORDERS = {
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "updated_at": ("updated_at", "id"),
    "-updated_at": ("-updated_at", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
    "review_by": ("review_by", "id"),
    "-review_by": ("-review_by", "-id"),
    # the state as the user may know it (readers: every document is "published")
    "state": ("visible_state", "-updated_at", "-id"),
    "-state": ("-visible_state", "-updated_at", "-id"),
}


def knowledge_base_list(*, user: Any) -> QuerySet[KnowledgeBase]:
    return (
        knowledge_base_policy.instances_user_has_permission_for(user, "view")
        .select_related("department")
        .prefetch_related("shared_with")
        .order_by("name", "id")
    )


def managed_knowledge_bases(*, user: Any) -> QuerySet[KnowledgeBase]:
    """The knowledge bases `user` may change (manage), by name: hit testing and the health pages."""
    return knowledge_base_policy.instances_user_has_permission_for(user, "change").select_related("department").order_by("name")


def knowledge_base_get(*, user: Any, pk: Any) -> KnowledgeBase:
    return knowledge_base_policy.instance_for_user(user, "view", pk)


def document_list(
    *,
    user: Any,
    knowledge_base: KnowledgeBase | None = None,
    q: str = "",
    tag: str = "",
    state: str = "",
    order: str = "-updated_at",
) -> QuerySet[Document]:
    """Documents for a list page: one query per page whatever its size (no per-row lookups)."""
    return filter_documents(
        document_policy.instances_user_has_permission_for(user, "view"),
        user=user,
        knowledge_base=knowledge_base,
        q=q,
        tag=tag,
        state=state,
        order=order,
    )


def filter_documents(
    documents: QuerySet[Document],
    *,
    user: Any,
    knowledge_base: KnowledgeBase | int | None = None,
    q: str = "",
    tag: str = "",
    state: str = "",
    order: str = "-updated_at",
) -> QuerySet[Document]:
    """Narrow an already authorized queryset (the list page and the API share it). The state
    filter and sort use the state as `user` may know it: a reader asking for drafts gets none."""
    documents = document_policy.with_visible_state(documents, user)
    if knowledge_base is not None:
        documents = documents.filter(knowledge_base_id=getattr(knowledge_base, "pk", knowledge_base))
    if q and q.strip():
        documents = documents.filter(title__icontains=q.strip())
    if tag and tag.strip():
        documents = documents.filter(tags__contains=[tag.strip()])
    if state:
        documents = documents.filter(visible_state=state) if state in DocumentState.values else documents.none()
    return (
        documents.select_related(
            "knowledge_base", "knowledge_base__department", "owner", "latest_version", "live_version",
            "latest_version__author", "live_version__author",
        )
        # The list shows version numbers and dates, not the (possibly long) texts.
        .defer("latest_version__content", "live_version__content")
        .order_by(*DOCUMENT_ORDERS.get(order, DOCUMENT_ORDERS["-updated_at"]))
    )


def document_get(*, user: Any, pk: Any) -> Document:
    try:
        return (
            document_policy.instances_user_has_permission_for(user, "view")
            .select_related(
                "knowledge_base", "knowledge_base__department", "owner", "latest_version", "live_version",
                "latest_version__author", "live_version__author",
            )
            .get(pk=pk)
        )
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def version_list(*, user: Any, document: Document) -> QuerySet[DocumentVersion]:
    """The versions of `document` that `user` may read, newest first (readers: every published one)."""
    return (
        version_policy.instances_user_has_permission_for(user, "view")
        .filter(document=document)
        .select_related("author", "parent", "document__knowledge_base")
        .order_by("-number")
    )


def version_get(*, user: Any, document: Document, number: Any) -> DocumentVersion:
    try:
        return version_list(user=user, document=document).get(number=int(number))
    except (DocumentVersion.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def review_inbox(*, user: Any) -> QuerySet[Review]:
    """Open reviews that `user` may decide, oldest first."""
    return (
        review_policy.instances_user_has_permission_for(user, "review")
        .filter(state=ReviewState.OPEN)
        .select_related(
            "document", "document__knowledge_base", "document__knowledge_base__department", "version",
            "version__author", "requested_by",
        )
        .defer("version__content")
        .order_by("created_at", "id")
    )


def review_list(*, user: Any, document: Document | None = None, state: str = "") -> QuerySet[Review]:
    reviews = review_policy.instances_user_has_permission_for(user, "view")
    if document is not None:
        reviews = reviews.filter(document=document)
    if state:
        reviews = reviews.filter(state=state)
    return reviews.select_related("document", "version", "requested_by", "decided_by").defer("version__content")


def review_get(*, user: Any, pk: Any) -> Review:
    try:
        return (
            review_policy.instances_user_has_permission_for(user, "view")
            .select_related("document", "document__knowledge_base", "version", "requested_by", "decided_by")
            .get(pk=pk)
        )
    except (Review.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def _filter_audit(
    entries: QuerySet[AuditEntry],
    *,
    date_from: date | None,
    date_to: date | None,
    author: Any,
    department: Any,
    action: str | None,
) -> QuerySet[AuditEntry]:
    if date_from:
        entries = entries.filter(created_at__date__gte=date_from)
    if date_to:
        entries = entries.filter(created_at__date__lte=date_to)
    if author:
        if isinstance(author, str) and not author.isdecimal():
            entries = entries.filter(actor_username=author)
        else:
            entries = entries.filter(actor_id=getattr(author, "pk", author))
    if department:
        if isinstance(department, str) and not department.isdecimal():
            entries = entries.filter(department__code=department)
        else:
            entries = entries.filter(department_id=getattr(department, "pk", department))
    if action:
        entries = entries.filter(action=action)
    return entries


def filter_audit(entries: QuerySet[AuditEntry], **filters: Any) -> QuerySet[AuditEntry]:
    """Narrow an already authorized audit queryset (date range, author, department, action)."""
    return _filter_audit(
        entries,
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
        author=filters.get("author"),
        department=filters.get("department"),
        action=filters.get("action"),
    ).select_related("actor", "department", "content_type", "version").defer("version__content")


def audit_list(
    *,
    user: Any,
    date_from: date | None = None,
    date_to: date | None = None,
    author: Any = None,
    department: Any = None,
    action: str | None = None,
) -> QuerySet[AuditEntry]:
    """Audit rows `user` may read; author: a user, id or username; department: one, its id or code."""
    entries = audit_entry_policy.instances_user_has_permission_for(user, "view")
    entries = _filter_audit(
        entries, date_from=date_from, date_to=date_to, author=author, department=department, action=action
    )
    return entries.select_related("actor", "department", "content_type", "version").defer("version__content").order_by(
        "-created_at", "-id"
    )


def compliance_version_list(
    *,
    user: Any,
    date_from: date | None = None,
    date_to: date | None = None,
    author: Any = None,
    department: Any = None,
    action: str | None = None,
) -> QuerySet[AuditEntry]:
    """Audit rows about document versions (one per version-changing action) that `user` may read,
    with the version, its document and knowledge base joined: the compliance page and its exports."""
    entries = audit_entry_policy.instances_user_has_permission_for(user, "view").filter(
        version__in=version_policy.instances_user_has_permission_for(user, "view")
    )
    entries = _filter_audit(
        entries, date_from=date_from, date_to=date_to, author=author, department=department, action=action
    )
    return (
        entries.select_related(
            "actor", "department", "version", "version__author", "version__document",
            "version__document__knowledge_base",
        )
        .defer("version__content")
        .order_by("-created_at", "-id")
    )


def compliance_audit_list(
    *,
    user: Any,
    document: Document | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    author: Any = None,
    department: Any = None,
    action: str | None = None,
) -> QuerySet[AuditEntry]:
    """Every audited action `user` may read (the audit policy's scope: the departments they
    review; everything for company admins), newest first, with the version, its document and
    knowledge base joined when the row has one: the compliance page and its exports."""
    entries = audit_list(
        user=user, date_from=date_from, date_to=date_to, author=author, department=department, action=action
    )
    if document is not None:
        about_document = Q(
            content_type=ContentType.objects.get_for_model(Document), object_id=str(document.pk)
        ) | Q(version__document=document)
        entries = entries.filter(about_document)
    return entries.select_related("version__author", "version__document__knowledge_base")


def open_review_for(*, user: Any, document: Document) -> Review | None:
    return review_list(user=user, document=document, state=ReviewState.OPEN).first()


def chunk_get(*, user: Any, pk: Any) -> Chunk:
    """One chunk (a chat citation, a search hit) with its version and document, if `user` may
    open its version: an old published version's chunk opens, a draft's is a 404 to readers."""
    try:
        return (
            chunk_policy.instances_user_has_permission_for(user, "view")
            .select_related("version", "document", "knowledge_base")
            .get(pk=pk)
        )
    except (Chunk.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def my_review_list(*, user: Any, state: str = "") -> QuerySet[Review]:
    """Reviews that `user` asked for, newest first: a knowledge manager follows their submissions."""
    reviews = review_policy.instances_user_has_permission_for(user, "view").filter(requested_by_id=user.pk)
    if state:
        reviews = reviews.filter(state=state)
    return (
        reviews.select_related("document", "document__knowledge_base", "version", "decided_by")
        .defer("version__content")
        .order_by("-created_at", "-id")
    )
