"""Every write on sources: create/update/delete, sync requests, the sync itself, the allowlist.

A sync acts as the source's creator: documents and versions are written through
knowledge.services (which authorize, audit and queue ingestion) with `created_by` as the actor,
so the policy is asked exactly as for a manual edit. When the creator no longer manages the
knowledge base, the sync fails with a message saying so. Each record is its own transaction: a
failing record is counted and reported and the others are kept.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import AuditAction, audit_log
from core.services import work_claim, work_enqueue, work_finish, work_heartbeat
from knowledge.models import Document, KnowledgeBase
from knowledge.services import document_create, document_update_metadata, document_version_create

from . import crypto, rendering
from .fetch_http import fetch_json
from .dsn_guard import RefusedDSN, dialect, vet_dsn
from .errors import FetchError
from .fetch_sql import fetch_rows, read_statement_error
from .models import AllowedHost, Source, SourceKind, SourceRecord, SourceSync, SyncStatus, SyncTrigger, normalize_host
from .policy import allowed_host_policy, source_policy

logger = logging.getLogger(__name__)

SOURCE_FIELDS = (
    "name", "enabled", "schedule_minutes", "key_field", "title_template", "body_template",
    "query", "url", "records_path", "auth_header_name", "timeout_seconds", "max_records",
)
SECRET_FIELDS = ("dsn", "auth_header_value")
NULLABLE_FIELDS = {"schedule_minutes"}
MAX_RECORD_ERRORS = 50
WORK_KIND = "source_sync"  # core background work, registered in sources/apps.py
HEARTBEAT_EVERY_S = 5.0
TITLE_MAX = 300


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _set_secret(source: Source, name: str, value: str) -> None:
    try:
        setattr(source, name, value)
    except crypto.CredentialsKeyMissing as exc:
        raise ValidationError({name: [str(exc)]}) from None


def _validate(source: Source) -> None:
    errors: dict[str, list[str]] = {}
    for name in ("title_template", "body_template"):
        try:
            rendering.validate_template(getattr(source, name))
        except rendering.TemplateError as exc:
            errors.setdefault(name, []).append(str(exc))
    if source.kind == SourceKind.SQL:
        if not source.dsn_encrypted:
            errors.setdefault("dsn", []).append(_("A connection string is required."))
        else:
            try:
                vet_dsn(source.dsn)  # refused places are refused at save time, not only at sync
            except RefusedDSN as exc:
                errors.setdefault("dsn", []).append(str(exc))
            except FetchError:
                pass  # a host that does not resolve now is checked again at every sync
        if not source.query.strip():
            errors.setdefault("query", []).append(_("A query is required."))
        elif source.dsn_encrypted:
            try:
                refusal = read_statement_error(source.query, dialect(source.dsn))
            except FetchError:
                refusal = None  # an unsupported database type is the DSN's error, given above
            if refusal:
                errors.setdefault("query", []).append(refusal)
    elif source.kind == SourceKind.HTTP and not source.url:
        errors.setdefault("url", []).append(_("A URL is required."))
    if errors:
        raise ValidationError(errors)
    source.full_clean(exclude=["last_sync", "created_by"])


def _schedule_next(source: Source, *, now: datetime.datetime | None = None) -> None:
    now = now or timezone.now()
    source.next_sync_at = now + datetime.timedelta(minutes=source.schedule_minutes) if source.is_scheduled else None


@transaction.atomic
def source_create(
    *, actor: Any, knowledge_base: KnowledgeBase, kind: str, ip: str | None = None, **fields: Any
) -> Source:
    _require(source_policy.user_may_add_in(actor, knowledge_base))
    unknown = set(fields) - set(SOURCE_FIELDS) - set(SECRET_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set.") for name in sorted(unknown)})
    source = Source(knowledge_base=knowledge_base, kind=kind, created_by=actor)
    for name in SOURCE_FIELDS:
        if name in fields and fields[name] is not None:
            setattr(source, name, fields[name])
    for name in SECRET_FIELDS:
        if fields.get(name):
            _set_secret(source, name, fields[name])
    _validate(source)
    _schedule_next(source)
    source.save()
    audit_log(
        actor=actor, action=AuditAction.CREATE, obj=source, department=knowledge_base.department, ip=ip,
        kind=kind, knowledge_base_id=knowledge_base.pk,
    )
    return source


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port made explicit; a URL that cannot be read is its own origin."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url or "")
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        return parts.scheme.lower(), (parts.hostname or "").lower(), port
    except ValueError:
        return "", url or "", None


@transaction.atomic
def source_update(*, actor: Any, source: Source, ip: str | None = None, **fields: Any) -> Source:
    """Credentials are write-only: an empty or missing value keeps the stored one."""
    _require(source_policy.user_has_permission_for_instance(actor, "change", source))
    unknown = set(fields) - set(SOURCE_FIELDS) - set(SECRET_FIELDS) - {"clear_auth_header"}
    if unknown:
        raise ValidationError({name: _("This field cannot be changed.") for name in sorted(unknown)})
    locked = Source.objects.select_for_update().select_related("knowledge_base__department").get(pk=source.pk)
    destination = (_origin(locked.url), locked.auth_header_name)
    changed: list[str] = []
    for name in SOURCE_FIELDS:
        if name not in fields or (fields[name] is None and name not in NULLABLE_FIELDS):
            continue
        if getattr(locked, name) != fields[name]:
            setattr(locked, name, fields[name])
            changed.append(name)
    for name in SECRET_FIELDS:
        if fields.get(name):
            _set_secret(locked, name, fields[name])
            changed.append(name)  # the name only: the value never goes into the audit log
    if fields.get("clear_auth_header") and locked.auth_header_encrypted:
        locked.auth_header_encrypted = ""
        changed.append("auth_header_value")
    if (locked.auth_header_encrypted and not fields.get("auth_header_value")
            and (_origin(locked.url), locked.auth_header_name) != destination):
        # The stored value goes only where it was entered for: whoever sends it elsewhere (another
        # scheme, host or port, or as another header) enters it, they never read the stored one.
        raise ValidationError({"auth_header_value": _(
            "The URL's host or the header name changed: enter the header value again, or remove it.")})
    _validate(locked)
    if {"schedule_minutes", "enabled"} & set(changed):
        _schedule_next(locked)
    locked.save()
    if changed:
        audit_log(
            actor=actor, action=AuditAction.EDIT, obj=locked, department=locked.knowledge_base.department, ip=ip,
            changed=sorted(changed),
        )
    return locked


def source_runner_may_sync(source: Source) -> bool:
    """Whether the user syncs run as (the creator, or who took the source over) may still sync it."""
    return source.created_by is not None and source_policy.user_has_permission_for_instance(source.created_by, "sync", source)


@transaction.atomic
def source_run_as(*, actor: Any, source: Source, ip: str | None = None) -> Source:
    """From now on the source's syncs run as `actor`, a manager of its knowledge base: for a source
    whose creator left or no longer manages it. Nothing stored is shown to `actor`, who could
    already edit the source and sync it; audited with the previous runner."""
    _require(source_policy.user_has_permission_for_instance(actor, "change", source))
    locked = Source.objects.select_for_update().select_related("knowledge_base__department", "created_by").get(pk=source.pk)
    previous = locked.created_by
    if previous is not None and previous.pk == actor.pk:
        return locked
    locked.created_by = actor
    locked.save(update_fields=["created_by", "updated_at"])
    audit_log(actor=actor, action=AuditAction.EDIT, obj=locked, department=locked.knowledge_base.department, ip=ip,
              changed=["runs_as"], previous_runner=previous.username if previous else None, runner=actor.username)
    return locked


@transaction.atomic
def source_delete(*, actor: Any, source: Source, ip: str | None = None) -> None:
    """Deleting a source keeps its documents; only the mapping and the sync history go."""
    _require(source_policy.user_has_permission_for_instance(actor, "delete", source))
    audit_log(
        actor=actor, action="delete", obj=source, department=source.knowledge_base.department, ip=ip,
        knowledge_base_id=source.knowledge_base_id,
    )
    Source.objects.filter(pk=source.pk).update(last_sync=None)
    source.delete()


# --- syncing -------------------------------------------------------------------------------------


def source_sync_request(*, actor: Any, source: Source, trigger: str = SyncTrigger.MANUAL) -> SourceSync:
    """Queue a sync on the ingest queue (after commit). `actor=None` is the scheduler."""
    if actor is not None:
        _require(source_policy.user_has_permission_for_instance(actor, "sync", source))
    with transaction.atomic():
        # Sent when the outermost transaction commits; core's reaper sends it if the broker was down.
        sync = work_enqueue(kind=WORK_KIND, row=SourceSync(source=source, trigger=trigger, requested_by=actor))
        if actor is not None:  # a person asked for it: the compliance trail shows who (schedules are routine)
            audit_log(
                actor=actor, action="source_sync", obj=source, department=source.knowledge_base.department,
                sync_id=sync.pk, trigger=trigger,
            )
        return sync


def sources_queue_due(*, now: datetime.datetime | None = None) -> list[SourceSync]:
    """Queue one sync per enabled, scheduled source whose time has come and that has none pending."""
    now = now or timezone.now()
    queued: list[SourceSync] = []
    # A run whose worker died is failed by core's reaper (stale heartbeat), so it stops blocking.
    pending = SourceSync.objects.filter(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
    with transaction.atomic():
        due = (
            Source.objects.select_for_update(skip_locked=True)
            .filter(enabled=True, schedule_minutes__isnull=False)
            .filter(Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now))
            .exclude(pk__in=pending.values("source_id"))
        )
        for source in due:
            _schedule_next(source, now=now)
            source.save(update_fields=["next_sync_at"])
            queued.append(source_sync_request(actor=None, source=source, trigger=SyncTrigger.SCHEDULE))
    return queued


def _fetch_records(source: Source) -> list[dict[str, Any]]:
    try:
        if source.kind == SourceKind.SQL:
            return [
                {str(k): rendering.plain(v) for k, v in row.items()}
                for row in fetch_rows(source.dsn, source.query, timeout_s=source.timeout_seconds, limit=source.max_records)
            ]
        headers = {}
        if source.has_auth_header:
            headers[source.auth_header_name or "Authorization"] = source.auth_header_value
        data = fetch_json(source.url, headers=headers, timeout_s=source.timeout_seconds)
    except crypto.CredentialsUnreadable:
        raise FetchError(
            _("The stored credentials cannot be decrypted with the configured SOURCE_CREDENTIALS_KEYS: enter them again.")
        ) from None
    except crypto.CredentialsKeyMissing as exc:
        raise FetchError(str(exc)) from None
    try:
        records = rendering.lookup(data, source.records_path) if source.records_path else data
    except KeyError:
        raise FetchError(_("The JSON answer has no “%(path)s”.") % {"path": source.records_path}) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FetchError(_("The records must be a JSON list of objects."))
    if len(records) > source.max_records:
        raise FetchError(
            _("The answer holds more than %(limit)s records; raise the record limit.") % {"limit": source.max_records}
        )
    return [rendering.plain(r) for r in records]


def _record_key(source: Source, record: dict[str, Any]) -> str:
    try:
        value = rendering.lookup(record, source.key_field)
    except KeyError:
        raise ValueError(_("The record has no key field “%(name)s”.") % {"name": source.key_field}) from None
    key = "" if value is None else str(value).strip()
    if not key:
        raise ValueError(_("The record's key field “%(name)s” is empty.") % {"name": source.key_field})
    if len(key) > 500:
        raise ValueError(_("The record's key is longer than 500 characters."))
    return key


def _apply_record(*, source: Source, actor: Any, key: str, record: dict[str, Any], note: str) -> str:
    """Create or update the document of one record; returns "created", "updated" or "unchanged"."""
    title = " ".join(rendering.render(source.title_template, record).split())[:TITLE_MAX]
    if not title:
        raise ValueError(_("The title template rendered an empty title."))
    body = rendering.render(source.body_template, record).strip()
    digest = rendering.content_hash(title, body)
    with transaction.atomic():
        existing = SourceRecord.objects.select_for_update().filter(source=source, external_key=key).first()
        if existing is None:
            document = document_create(
                actor=actor, knowledge_base=source.knowledge_base, title=title, content=body, change_note=note
            )
            SourceRecord.objects.create(source=source, external_key=key, document=document, content_sha256=digest)
            return "created"
        if existing.content_sha256 == digest:
            return "unchanged"
        document = Document.objects.select_related("latest_version", "knowledge_base__department").get(
            pk=existing.document_id
        )
        if document.title != title:
            document_update_metadata(actor=actor, document=document, title=title)
        latest = document.latest_version
        if latest.content != body:
            document_version_create(
                actor=actor, document=document, content=body, base_version_number=latest.number, change_note=note
            )
        existing.content_sha256 = digest
        existing.save(update_fields=["content_sha256", "synced_at"])
        return "updated"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, PermissionDenied):
        return _("Permission denied.")
    return str(exc) or type(exc).__name__


def _start(sync_id: int) -> SourceSync | None:
    with transaction.atomic():
        sync = SourceSync.objects.select_for_update().select_related("source").get(pk=sync_id)
        if sync.status != SyncStatus.QUEUED:
            return None  # a redelivered task: the run already happened or is happening
        # One run per source at a time: lock the source row while deciding. A running one whose
        # worker died is failed by the reaper, so it does not block for longer than that.
        Source.objects.select_for_update().get(pk=sync.source_id)
        busy = SourceSync.objects.filter(source_id=sync.source_id, status=SyncStatus.RUNNING).exclude(pk=sync.pk)
        if busy.exists():
            now = timezone.now()
            SourceSync.objects.filter(pk=sync.pk).update(
                status=SyncStatus.FAILED, started_at=now, finished_at=now,
                error=_("Another sync of this source is still running."),
            )
            return None
        claimed = work_claim(kind=WORK_KIND, pks=[sync.pk])
    return claimed[0] if claimed else None


def source_sync_run(*, sync_id: int) -> SourceSync:
    """Run one queued sync in this process (the Celery task calls this)."""
    sync = _start(sync_id)
    if sync is None:
        return SourceSync.objects.get(pk=sync_id)
    source = Source.objects.select_related("knowledge_base__department", "created_by").get(pk=sync.source_id)
    actor = source.created_by
    note = _("Synced from source “%(name)s”") % {"name": source.name}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    record_errors: list[dict[str, str]] = []
    error = ""
    fetched = 0
    try:
        if not source_policy.user_has_permission_for_instance(actor, "sync", source):
            raise FetchError(
                _("The source runs as %(user)s, who no longer manages this knowledge base.") % {"user": actor}
            )
        records = _fetch_records(source)
        fetched = len(records)
        seen: set[str] = set()
        last_beat = time.monotonic()
        for number, record in enumerate(records):
            if time.monotonic() - last_beat > HEARTBEAT_EVERY_S:
                work_heartbeat(kind=WORK_KIND, rows=[sync], progress=round(number / fetched, 4))
                last_beat = time.monotonic()
            key = ""
            try:
                key = _record_key(source, record)
                if key in seen:
                    raise ValueError(_("The key “%(key)s” appears more than once.") % {"key": key})
                seen.add(key)
                outcome = _apply_record(source=source, actor=actor, key=key, record=record, note=note)
            except Exception as exc:  # one bad record must not lose the others
                counts["failed"] += 1
                if len(record_errors) < MAX_RECORD_ERRORS:
                    record_errors.append({"key": key, "error": _error_text(exc)[:500]})
            else:
                counts[outcome] += 1
    except FetchError as exc:
        error = str(exc)
    except Exception as exc:
        logger.exception("source sync %s failed", sync.pk)
        error = _("Unexpected error: %(error)s") % {"error": _error_text(exc)}
    if error:
        status = SyncStatus.FAILED
    elif counts["failed"]:
        status = SyncStatus.PARTIAL if (counts["created"] + counts["updated"] + counts["unchanged"]) else SyncStatus.FAILED
        if status == SyncStatus.FAILED:
            error = _("Every record failed; see the record errors.")
    else:
        status = SyncStatus.SUCCEEDED
    with transaction.atomic():
        work_finish(
            kind=WORK_KIND, row=sync, status=status, error=error, record_errors=record_errors, fetched=fetched,
            progress=1.0, **counts,
        )
        Source.objects.filter(pk=source.pk).update(last_sync=sync.pk)
        # Every run's outcome is on the compliance trail, the scheduled ones too (actor: who asked, or "system").
        audit_log(
            actor=sync.requested_by, action="source_sync_finished", obj=source,
            department=source.knowledge_base.department, sync_id=sync.pk, trigger=sync.trigger, status=status,
            error=error[:500], fetched=fetched, **counts,
        )
    sync.refresh_from_db()
    return sync


def source_sync(*, source_id: int, actor: Any = None) -> SourceSync:
    """Sync one source now, in this process. With an actor, the actor must manage the source
    (404 otherwise); without one it is the system (scheduler, management code)."""
    if actor is not None:
        source = source_policy.instance_for_user(actor, "sync", source_id)
    else:
        source = Source.objects.get(pk=source_id)
    sync = SourceSync.objects.create(
        source=source, trigger=SyncTrigger.MANUAL if actor else SyncTrigger.SCHEDULE, requested_by=actor,
        dispatched_at=timezone.now(),  # runs here: nothing to send
    )
    return source_sync_run(sync_id=sync.pk)


# --- allowlist -----------------------------------------------------------------------------------


@transaction.atomic
def allowed_host_create(
    *, actor: Any, host: str, allow_private_addresses: bool = False, note: str = "", ip: str | None = None,
    source_kind: str = SourceKind.HTTP, port: int | None = None,
) -> AllowedHost:
    _require(allowed_host_policy.user_has_permission(actor, "add"))
    entry = AllowedHost(
        source_kind=source_kind, host=normalize_host(host), port=port,
        allow_private_addresses=allow_private_addresses, note=note, created_by=actor,
    )
    if ":" in entry.host and not _is_ip_literal(entry.host):
        raise ValidationError({"host": _("Give the port in its own field, not after the host.")})
    entry.full_clean(exclude=["created_by"])
    entry.save()
    audit_log(
        actor=actor, action=AuditAction.CREATE, obj=entry, ip=ip, allow_private_addresses=allow_private_addresses,
        source_kind=source_kind, port=port,
    )
    return entry


@transaction.atomic
def allowed_host_delete(*, actor: Any, entry: AllowedHost, ip: str | None = None) -> None:
    _require(allowed_host_policy.user_has_permission_for_instance(actor, "delete", entry))
    audit_log(actor=actor, action="delete", obj=entry, ip=ip)
    entry.delete()


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
