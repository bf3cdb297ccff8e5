"""The single entry point that writes audit entries (after Wagtail's log_actions)."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from .models import AuditEntry


class AuditAction:
    CREATE = "create"
    EDIT = "edit"
    SUBMIT = "submit"
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    PUBLISH = "publish"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"
    RESTORE = "restore"
    PERMISSION_CHANGE = "permission_change"
    DOWNLOAD = "download"
    PURGE = "purge"
    DELETE = "delete"


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(details, cls=DjangoJSONEncoder, default=str))


def audit_log(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    department: Any = None,
    version: Any = None,
    ip: str | None = None,
    **details: Any,
) -> AuditEntry:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry.objects.create(
        actor=actor if is_user else None,
        actor_username=actor.get_username() if is_user else "system",
        action=action,
        content_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:300] if obj is not None else "",
        department=department,
        version=version,
        ip=ip or None,
        details=_jsonable(details),
    )


def client_ip(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") or None
