"""Every write on knowledge bases, documents, versions, reviews and edit locks.

Each service authorizes through the policy, runs in one transaction and writes its audit
entries through core.audit.audit_log. State machine of a document (its state describes the
latest version; an older live version keeps being served while a newer draft is edited):

    draft --submit--> in_review --approve--> published
      ^                   |  \\--request changes--> draft
      |                   \\--new version (cancels the open review)--> draft
      +---- new version ---- published
    any state but archived --archive (with a reason)--> archived --restore--> submitted like an edit
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import File
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Department, Membership, Role
from accounts.policy import Capability, is_company_admin, user_has_capability
from core.audit import AuditAction, audit_log

from .models import (
    Document,
    DocumentState,
    DocumentVersion,
    EditLock,
    KnowledgeBase,
    Review,
    ReviewState,
    VersionPublication,
)
from .ingestion.services import live_chunks_sync, version_ingest_enqueue
from .kb_settings import validate_chunk_settings, validate_retrieval_settings
from .policy import document_policy, knowledge_base_policy, review_policy, version_policy

AUDIT_EDIT_LOCK_BREAK = "edit_lock_break"
AUDIT_EDIT_LOCK_TAKEOVER = "edit_lock_takeover"
REASON_MAX_LENGTH = 1000
SHARING_FIELDS = ("shared_with", "shared_company_wide")
KNOWLEDGE_BASE_FIELDS = (
    "name", "description", "review_required", "self_approval_role", "chunk_settings", "retrieval_settings",
)
# Which four-eyes rule let an approve through (recorded in its audit row).
RULE_OTHER_REVIEWER = "another_reviewer"
RULE_SELF_APPROVAL = "self_approval_allowed_for_role"


class VersionConflict(Exception):
    """The edit was based on an older version than the latest one. Nothing was saved; the
    submitted text travels back to the caller in `.content` so it can be merged."""

    def __init__(self, latest: DocumentVersion, content: str = "", base_version_number: int | None = None):
        super().__init__(f"Latest version is v{latest.number}, the edit was based on v{base_version_number}.")
        self.latest = latest
        self.content = content
        self.base_version_number = base_version_number


class EditLocked(Exception):
    """Someone else holds the document's edit lock."""

    def __init__(self, lock: EditLock):
        super().__init__(f"Document is being edited by {lock.owner}.")
        self.lock = lock


class IllegalTransition(ValidationError):
    """A review or document state change that the state machine does not allow."""


# --- helpers -----------------------------------------------------------------------------------


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _lock_document(document: Document) -> Document:
    """Re-read the document under a row lock: concurrent writers queue up behind it."""
    # of=("self",): lock the document row only, not its knowledge base (joined by select_related).
    return Document.objects.select_for_update(of=("self",)).select_related("knowledge_base__department").get(
        pk=document.pk
    )


def _sync(target: Document, source: Document) -> None:
    """Give the caller's instance the fresh pointers and state."""
    for field in ("state", "latest_version_id", "live_version_id", "title", "tags", "review_by", "updated_at"):
        setattr(target, field, getattr(source, field))
    for cached in ("latest_version", "live_version"):
        if cached in target._state.fields_cache:
            del target._state.fields_cache[cached]


def _file_fields(original_file: Any) -> dict[str, Any]:
    if original_file is None:
        return {}
    size = getattr(original_file, "size", None)
    if size is not None and size > settings.UPLOAD_MAX_BYTES:
        raise ValidationError({"original_file": _("The file is larger than the upload limit.")})
    digest = hashlib.sha256()
    if hasattr(original_file, "chunks"):
        for chunk in original_file.chunks():
            digest.update(chunk)
    else:
        original_file.seek(0)
        digest.update(original_file.read())
    original_file.seek(0)
    name = (getattr(original_file, "name", "") or "upload").rsplit("/", 1)[-1]
    mime = getattr(original_file, "content_type", None) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if not isinstance(original_file, File):
        original_file = File(original_file, name=name)
    return {
        "original_file": original_file,
        "file_name": name[:255],
        "file_sha256": digest.hexdigest(),
        "file_size": size if size is not None else original_file.size,
        "file_mime": mime[:100],
    }


def _new_version(
    *,
    document: Document,
    author: Any,
    content: str,
    parent: DocumentVersion | None,
    change_note: str = "",
    original_file: Any = None,
    file_from: DocumentVersion | None = None,
) -> DocumentVersion:
    version = DocumentVersion(
        document=document,
        number=(parent.number + 1) if parent is not None else 1,
        parent=parent,
        content=content,
        author=author,
        change_note=change_note[:500],
        **_file_fields(original_file),
    )
    if file_from is not None and file_from.original_file:
        # Versions never change, so a restored version may point at the same stored file.
        version.original_file = file_from.original_file.name
        version.file_name = file_from.file_name
        version.file_sha256 = file_from.file_sha256
        version.file_size = file_from.file_size
        version.file_mime = file_from.file_mime
    version.save()
    # Same transaction as the version: a version never exists without its queued ingestion row.
    version_ingest_enqueue(version=version)
    return version


def _cancel_open_review(*, document: Document, actor: Any) -> Review | None:
    review = Review.objects.select_for_update().filter(document=document, state=ReviewState.OPEN).first()
    if review is None:
        return None
    review.state = ReviewState.CANCELLED
    review.decided_by = actor
    review.decided_at = timezone.now()
    review.save(update_fields=["state", "decided_by", "decided_at"])
    return review


def _publish(*, actor: Any, document: Document, version: DocumentVersion, ip: str | None, **details: Any) -> None:
    previous = document.live_version_id
    document.live_version = version
    document.state = DocumentState.PUBLISHED
    document.save(update_fields=["live_version", "state", "updated_at"])
    # The durable "was published" record that opens this version to readers from now on.
    VersionPublication.objects.get_or_create(version=version, defaults={"document": document})
    live_chunks_sync(document=document)
    audit_log(
        actor=actor,
        action=AuditAction.PUBLISH,
        obj=document,
        department=document.knowledge_base.department,
        version=version,
        ip=ip,
        number=version.number,
        previous_live_version_id=previous,
        **details,
    )


# --- knowledge bases ---------------------------------------------------------------------------


@transaction.atomic
def knowledge_base_create(
    *,
    actor: Any,
    department: Department,
    name: str,
    description: str = "",
    review_required: bool = True,
    self_approval_role: str = "",
    shared_with: Iterable[Department] = (),
    shared_company_wide: bool = False,
    chunk_settings: dict | None = None,
    retrieval_settings: dict | None = None,
    ip: str | None = None,
) -> KnowledgeBase:
    _require(knowledge_base_policy.user_may_add_in(actor, department))
    extra = {}
    if chunk_settings is not None:
        extra["chunk_settings"] = validate_chunk_settings(chunk_settings)
    if retrieval_settings is not None:
        extra["retrieval_settings"] = validate_retrieval_settings(retrieval_settings)
    knowledge_base = KnowledgeBase(
        name=name,
        description=description,
        department=department,
        review_required=review_required,
        self_approval_role=self_approval_role,
        shared_company_wide=shared_company_wide,
        created_by=actor,
        **extra,
    )
    knowledge_base.full_clean()
    knowledge_base.save()
    shared = list(shared_with)
    knowledge_base.shared_with.set(shared)
    audit_log(
        actor=actor,
        action=AuditAction.CREATE,
        obj=knowledge_base,
        department=department,
        ip=ip,
        review_required=review_required,
        self_approval_role=self_approval_role,
        shared_with=sorted(d.code for d in shared),
        shared_company_wide=shared_company_wide,
    )
    return knowledge_base


@transaction.atomic
def knowledge_base_update(
    *, actor: Any, knowledge_base: KnowledgeBase, ip: str | None = None, **fields: Any
) -> KnowledgeBase:
    """Settings changes are audited as `edit`, sharing changes as `permission_change`."""
    _require(knowledge_base_policy.user_has_permission_for_instance(actor, "change", knowledge_base))
    unknown = set(fields) - set(KNOWLEDGE_BASE_FIELDS) - set(SHARING_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be changed.") for name in sorted(unknown)})
    if "chunk_settings" in fields:
        validate_chunk_settings(fields["chunk_settings"])
    if "retrieval_settings" in fields:
        validate_retrieval_settings(fields["retrieval_settings"])
    knowledge_base = KnowledgeBase.objects.select_for_update().get(pk=knowledge_base.pk)
    changed: dict[str, Any] = {}
    for name in KNOWLEDGE_BASE_FIELDS:
        if name in fields and getattr(knowledge_base, name) != fields[name]:
            changed[name] = fields[name]
            setattr(knowledge_base, name, fields[name])
    sharing: dict[str, Any] = {}
    if "shared_company_wide" in fields and knowledge_base.shared_company_wide != fields["shared_company_wide"]:
        sharing["shared_company_wide"] = {
            "from": knowledge_base.shared_company_wide,
            "to": fields["shared_company_wide"],
        }
        knowledge_base.shared_company_wide = fields["shared_company_wide"]
    knowledge_base.full_clean()
    knowledge_base.save()
    if "shared_with" in fields:
        before = set(knowledge_base.shared_with.values_list("code", flat=True))
        new = list(fields["shared_with"])
        after = {d.code for d in new}
        if before != after:
            knowledge_base.shared_with.set(new)
            sharing["shared_with"] = {"added": sorted(after - before), "removed": sorted(before - after)}
    department = knowledge_base.department
    if changed:
        audit_log(
            actor=actor, action=AuditAction.EDIT, obj=knowledge_base, department=department, ip=ip, changed=changed
        )
    if sharing:
        audit_log(
            actor=actor,
            action=AuditAction.PERMISSION_CHANGE,
            obj=knowledge_base,
            department=department,
            ip=ip,
            **sharing,
        )
    return knowledge_base


# --- documents and versions --------------------------------------------------------------------


@transaction.atomic
def document_create(
    *,
    actor: Any,
    knowledge_base: KnowledgeBase,
    title: str,
    content: str,
    tags: Iterable[str] = (),
    review_by: date | None = None,
    change_note: str = "",
    original_file: Any = None,
    ip: str | None = None,
) -> Document:
    _require(knowledge_base_policy.user_has_permission_for_instance(actor, "change", knowledge_base))
    document = Document(
        knowledge_base=knowledge_base,
        title=title,
        tags=_clean_tags(tags),
        owner=actor,
        review_by=review_by,
        state=DocumentState.DRAFT,
    )
    document.full_clean(exclude=["latest_version", "live_version"])
    document.save()
    version = _new_version(
        document=document,
        author=actor,
        content=content,
        parent=None,
        change_note=change_note,
        original_file=original_file,
    )
    document.latest_version = version
    document.save(update_fields=["latest_version", "updated_at"])
    audit_log(
        actor=actor,
        action=AuditAction.CREATE,
        obj=document,
        department=knowledge_base.department,
        version=version,
        ip=ip,
        title=title,
        number=1,
    )
    return document


def _clean_tags(tags: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for tag in tags:
        tag = str(tag).strip()[:64]
        if tag and tag not in seen:
            seen.append(tag)
    return seen


@transaction.atomic
def document_update_metadata(*, actor: Any, document: Document, ip: str | None = None, **fields: Any) -> Document:
    """Title, tags and review-by date: document metadata, not versioned content."""
    _require(document_policy.user_has_permission_for_instance(actor, "change", document))
    unknown = set(fields) - {"title", "tags", "review_by"}
    if unknown:
        raise ValidationError({name: _("This field cannot be changed.") for name in sorted(unknown)})
    locked = _lock_document(document)
    if "tags" in fields:
        fields["tags"] = _clean_tags(fields["tags"])
    changed = {}
    for name, value in fields.items():
        if getattr(locked, name) != value:
            changed[name] = {"from": getattr(locked, name), "to": value}
            setattr(locked, name, value)
    if changed:
        locked.full_clean(exclude=["latest_version", "live_version"])
        locked.save()
        audit_log(
            actor=actor,
            action=AuditAction.EDIT,
            obj=locked,
            department=locked.knowledge_base.department,
            ip=ip,
            changed=changed,
        )
    _sync(document, locked)
    return document


def _check_edit_lock(document: Document, actor: Any) -> None:
    """Someone else's live lock refuses the write; an expired one (its editor closed the page or
    went away) does not: the lock was a courtesy, and a lock nobody refreshes must not wedge."""
    lock = EditLock.objects.select_related("owner").filter(document=document).first()
    if lock is not None and lock.owner_id != actor.pk and not lock.is_expired:
        raise EditLocked(lock)


@transaction.atomic
def document_version_create(
    *,
    actor: Any,
    document: Document,
    content: str,
    base_version_number: int,
    change_note: str = "",
    original_file: Any = None,
    ip: str | None = None,
) -> DocumentVersion:
    """Save an edit as a new version. The edit names the version it started from: when that is
    no longer the latest one, VersionConflict carries the latest version and the rejected text."""
    _require(document_policy.user_has_permission_for_instance(actor, "change", document))
    locked = _lock_document(document)
    if locked.state == DocumentState.ARCHIVED:
        raise IllegalTransition(_("An archived document cannot be edited."), code="archived")
    _check_edit_lock(locked, actor)
    latest = locked.latest_version
    if latest.number != base_version_number:
        raise VersionConflict(latest, content=content, base_version_number=base_version_number)
    if locked.live_version_id is not None and not change_note.strip():
        raise ValidationError({"change_note": _("A change note is required when a published document is edited.")})
    version = _new_version(
        document=locked,
        author=actor,
        content=content,
        parent=latest,
        change_note=change_note.strip(),
        original_file=original_file,
    )
    cancelled = _cancel_open_review(document=locked, actor=actor)
    locked.latest_version = version
    locked.state = DocumentState.DRAFT
    locked.save(update_fields=["latest_version", "state", "updated_at"])
    audit_log(
        actor=actor,
        action=AuditAction.EDIT,
        obj=locked,
        department=locked.knowledge_base.department,
        version=version,
        ip=ip,
        number=version.number,
        base_version_number=base_version_number,
        change_note=version.change_note,
        cancelled_review_id=cancelled.pk if cancelled else None,
    )
    _sync(document, locked)
    return version


def _submit_locked(*, actor: Any, document: Document, ip: str | None) -> Review | None:
    if document.state != DocumentState.DRAFT:
        raise IllegalTransition(
            _("Only a draft can be submitted for review (the document is %(state)s).")
            % {"state": document.get_state_display()},
            code="not_draft",
        )
    version = document.latest_version
    department = document.knowledge_base.department
    if not document.knowledge_base.review_required:
        audit_log(
            actor=actor, action=AuditAction.SUBMIT, obj=document, department=department, version=version, ip=ip,
            number=version.number, review_required=False,
        )
        _publish(actor=actor, document=document, version=version, ip=ip, reviewed=False)
        return None
    review = Review.objects.create(document=document, version=version, requested_by=actor)
    document.state = DocumentState.IN_REVIEW
    document.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=actor, action=AuditAction.SUBMIT, obj=document, department=department, version=version, ip=ip,
        number=version.number, review_id=review.pk,
    )
    return review


@transaction.atomic
def document_submit(*, actor: Any, document: Document, ip: str | None = None) -> Review | None:
    """Ask for a review of the latest version; publishes at once when the knowledge base needs no review."""
    _require(document_policy.user_has_permission_for_instance(actor, "submit", document))
    locked = _lock_document(document)
    review = _submit_locked(actor=actor, document=locked, ip=ip)
    _sync(document, locked)
    return review


def _decide(*, actor: Any, review: Review) -> tuple[Review, Document]:
    _require(review_policy.user_has_permission_for_instance(actor, "review", review))
    locked_document = _lock_document(review.document)
    locked = Review.objects.select_for_update(of=("self",)).select_related("version").get(pk=review.pk)
    if locked.state != ReviewState.OPEN:
        raise IllegalTransition(
            _("This review is already closed (%(state)s).") % {"state": locked.get_state_display()}, code="closed"
        )
    if locked_document.latest_version_id != locked.version_id or locked_document.state != DocumentState.IN_REVIEW:
        raise IllegalTransition(_("The document changed since this review was requested."), code="stale")
    return locked, locked_document


def _close(review: Review, *, actor: Any, state: str, comment: str) -> None:
    review.state = state
    review.decided_by = actor
    review.decided_at = timezone.now()
    review.comment = comment
    review.save(update_fields=["state", "decided_by", "decided_at", "comment"])


def _four_eyes_rule(*, actor: Any, review: Review, document: Document) -> dict[str, Any]:
    """Who submitted or wrote the change may not approve it (company admins included), unless the
    knowledge base allows self-approval for a role they hold in its department."""
    own = actor.pk in (review.requested_by_id, review.version.author_id)
    if not own:
        return {"four_eyes_rule": RULE_OTHER_REVIEWER}
    role = document.knowledge_base.self_approval_role
    department = document.knowledge_base.department
    if role:
        roles = set(Membership.objects.filter(user=actor, department=department).values_list("role", flat=True))
        if role in roles or (role == Role.ADMIN and is_company_admin(actor)):
            return {"four_eyes_rule": RULE_SELF_APPROVAL, "self_approval_role": role}
    raise IllegalTransition(
        _("You submitted or wrote this change: another reviewer must approve it (four-eyes rule)."),
        code="four_eyes",
    )


@transaction.atomic
def review_approve(*, actor: Any, review: Review, comment: str = "", ip: str | None = None) -> Review:
    """Approve and publish the reviewed version; the previously live version stays in the history."""
    locked, document = _decide(actor=actor, review=review)
    rule = _four_eyes_rule(actor=actor, review=locked, document=document)
    _close(locked, actor=actor, state=ReviewState.APPROVED, comment=comment)
    audit_log(
        actor=actor, action=AuditAction.APPROVE, obj=locked, department=document.knowledge_base.department,
        version=locked.version, ip=ip, comment=comment, document_id=document.pk, number=locked.version.number,
        **rule,
    )
    _publish(actor=actor, document=document, version=locked.version, ip=ip, review_id=locked.pk)
    return locked


@transaction.atomic
def review_request_changes(*, actor: Any, review: Review, comment: str, ip: str | None = None) -> Review:
    if not (comment or "").strip():
        raise ValidationError({"comment": _("Say what needs to change.")})
    locked, document = _decide(actor=actor, review=review)
    _close(locked, actor=actor, state=ReviewState.CHANGES_REQUESTED, comment=comment.strip())
    document.state = DocumentState.DRAFT
    document.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=actor, action=AuditAction.REQUEST_CHANGES, obj=locked, department=document.knowledge_base.department,
        version=locked.version, ip=ip, comment=locked.comment, document_id=document.pk, number=locked.version.number,
    )
    return locked


@transaction.atomic
def document_rollback(*, actor: Any, document: Document, to_number: int, ip: str | None = None) -> DocumentVersion:
    """A new version with the content of v<to_number>, then submitted like any edit."""
    _require(document_policy.user_has_permission_for_instance(actor, "rollback", document))
    locked = _lock_document(document)
    if locked.state == DocumentState.ARCHIVED:
        raise IllegalTransition(_("An archived document cannot be rolled back."), code="archived")
    _check_edit_lock(locked, actor)
    try:
        source = DocumentVersion.objects.get(document=locked, number=to_number)
    except DocumentVersion.DoesNotExist:
        raise ValidationError({"to_number": _("This document has no version %(number)s.") % {"number": to_number}})
    latest = locked.latest_version
    if source.pk == latest.pk:
        raise IllegalTransition(_("This is already the latest version."), code="already_latest")
    version = _new_version(
        document=locked,
        author=actor,
        content=source.content,
        parent=latest,
        change_note=f"rolled back to v{source.number}",
        file_from=source,
    )
    cancelled = _cancel_open_review(document=locked, actor=actor)
    locked.latest_version = version
    locked.state = DocumentState.DRAFT
    locked.save(update_fields=["latest_version", "state", "updated_at"])
    audit_log(
        actor=actor, action=AuditAction.ROLLBACK, obj=locked, department=locked.knowledge_base.department,
        version=version, ip=ip, number=version.number, rolled_back_to=source.number,
        cancelled_review_id=cancelled.pk if cancelled else None,
    )
    _submit_locked(actor=actor, document=locked, ip=ip)
    _sync(document, locked)
    return version


@transaction.atomic
def document_archive(*, actor: Any, document: Document, reason: str = "", ip: str | None = None) -> Document:
    """Take the document out of search and out of readers' sight. Archiving a published document
    needs a reason (it is audited); `document_restore` brings it back through review."""
    _require(document_policy.user_has_permission_for_instance(actor, "archive", document))
    locked = _lock_document(document)
    if locked.state == DocumentState.ARCHIVED:
        raise IllegalTransition(_("The document is already archived."), code="archived")
    reason = (reason or "").strip()
    if locked.live_version_id is not None and not reason:
        raise ValidationError({"reason": _("Say why this published document is archived.")})
    cancelled = _cancel_open_review(document=locked, actor=actor)
    previous = locked.state
    locked.state = DocumentState.ARCHIVED
    locked.save(update_fields=["state", "updated_at"])
    EditLock.objects.filter(document=locked).delete()
    live_chunks_sync(document=locked)
    audit_log(
        actor=actor, action=AuditAction.ARCHIVE, obj=locked, department=locked.knowledge_base.department,
        version=locked.latest_version, ip=ip, previous_state=previous, reason=reason[:REASON_MAX_LENGTH],
        cancelled_review_id=cancelled.pk if cancelled else None,
    )
    _sync(document, locked)
    return document


@transaction.atomic
def document_restore(*, actor: Any, document: Document, reason: str = "", ip: str | None = None) -> Review | None:
    """Bring an archived document back: its latest version is submitted like any change, so it
    goes live again only after review when the knowledge base requires one (at once otherwise).
    Returns the review it opened, or None when it was published directly."""
    _require(document_policy.user_has_permission_for_instance(actor, "restore", document))
    locked = _lock_document(document)
    if locked.state != DocumentState.ARCHIVED:
        raise IllegalTransition(_("Only an archived document can be restored."), code="not_archived")
    previous_live = locked.live_version_id
    # Readers see it again only when the submit below publishes (now, or once a reviewer approves).
    locked.state = DocumentState.DRAFT
    locked.live_version = None
    locked.save(update_fields=["state", "live_version", "updated_at"])
    live_chunks_sync(document=locked)
    audit_log(
        actor=actor, action=AuditAction.RESTORE, obj=locked, department=locked.knowledge_base.department,
        version=locked.latest_version, ip=ip, number=locked.latest_version.number, previous_live_version_id=previous_live,
        reason=(reason or "").strip()[:REASON_MAX_LENGTH], review_required=locked.knowledge_base.review_required,
    )
    review = _submit_locked(actor=actor, document=locked, ip=ip)
    _sync(document, locked)
    return review


# --- edit locks ---------------------------------------------------------------------------------


def _take_over(*, actor: Any, lock: EditLock, document: Document, ip: str | None) -> EditLock:
    previous_owner = lock.owner.get_username()
    refreshed_at = lock.refreshed_at
    lock.owner = actor
    lock.acquired_at = lock.refreshed_at = timezone.now()
    lock.save(update_fields=["owner", "acquired_at", "refreshed_at"])
    audit_log(
        actor=actor, action=AUDIT_EDIT_LOCK_TAKEOVER, obj=document, department=document.knowledge_base.department,
        ip=ip, lock_owner=previous_owner, last_seen_at=refreshed_at,
    )
    return lock


@transaction.atomic
def edit_lock_acquire(*, actor: Any, document: Document, ip: str | None = None) -> EditLock:
    """Take (or refresh) the lock; raises EditLocked when someone else holds a live one. An
    expired lock (not refreshed within EDIT_LOCK_TTL_SECONDS) is taken over, audited."""
    _require(document_policy.user_has_permission_for_instance(actor, "change", document))
    locked = _lock_document(document)
    if locked.state == DocumentState.ARCHIVED:
        raise IllegalTransition(_("An archived document cannot be edited."), code="archived")
    lock = EditLock.objects.select_for_update().select_related("owner").filter(document=locked).first()
    if lock is None:
        return EditLock.objects.create(document=locked, owner=actor)
    if lock.owner_id != actor.pk:
        if not lock.is_expired:
            raise EditLocked(lock)
        return _take_over(actor=actor, lock=lock, document=locked, ip=ip)
    lock.refreshed_at = timezone.now()
    lock.save(update_fields=["refreshed_at"])
    return lock


def edit_lock_heartbeat(*, actor: Any, document: Document, ip: str | None = None) -> EditLock:
    """The open editor calls this every minute: it keeps the lock alive (or takes it again)."""
    return edit_lock_acquire(actor=actor, document=document, ip=ip)


@transaction.atomic
def edit_lock_take_over(*, actor: Any, document: Document, ip: str | None = None) -> EditLock:
    """A knowledge manager of the department takes over an expired (abandoned) lock, audited. A
    live lock is refused here; the department's admins may still break it (`edit_lock_break`)."""
    if not document_policy.user_has_permission_for_instance(actor, "view", document):
        raise Http404
    _require(document_policy.user_has_permission_for_instance(actor, "change", document))
    locked = _lock_document(document)
    lock = EditLock.objects.select_for_update().select_related("owner").filter(document=locked).first()
    if lock is not None and lock.owner_id != actor.pk and not lock.is_expired:
        raise IllegalTransition(
            _("%(user)s is still editing this document: the lock can be taken over once it expires.")
            % {"user": lock.owner},
            code="lock_live",
        )
    return edit_lock_acquire(actor=actor, document=locked, ip=ip)


@transaction.atomic
def edit_lock_release(*, actor: Any, document: Document) -> None:
    """Release your own lock (a no-op when you hold none)."""
    EditLock.objects.filter(document=document, owner=actor).delete()


@transaction.atomic
def edit_lock_break(*, actor: Any, document: Document, ip: str | None = None) -> None:
    """Admins (of the owning department or the company) remove someone else's lock."""
    if not document_policy.user_has_permission_for_instance(actor, "view", document):
        raise Http404
    _require(document_policy.user_has_permission_for_instance(actor, "break_lock", document))
    lock = EditLock.objects.select_for_update().select_related("owner").filter(document=document).first()
    if lock is None:
        return
    owner = lock.owner.get_username()
    acquired_at = lock.acquired_at
    lock.delete()
    audit_log(
        actor=actor, action=AUDIT_EDIT_LOCK_BREAK, obj=document, department=document.knowledge_base.department,
        ip=ip, lock_owner=owner, acquired_at=acquired_at,
    )


# --- files --------------------------------------------------------------------------------------


def version_file_open(*, actor: Any, version: DocumentVersion, ip: str | None = None):
    """Open a version's original file for reading; the download is audited. Hidden == missing."""
    version = version_policy.instance_for_user(actor, "view", version.pk)
    if not version.original_file:
        raise Http404
    handle = version.original_file.open("rb")
    document = version.document
    with transaction.atomic():
        audit_log(
            actor=actor, action=AuditAction.DOWNLOAD, obj=document, department=document.knowledge_base.department,
            version=version, ip=ip, file_name=version.file_name, file_sha256=version.file_sha256,
        )
    return handle
