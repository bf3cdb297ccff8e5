"""Every write on users, departments and memberships. Each authorizes through the policy and
writes an audit entry."""

import hashlib
import secrets
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.models import GroupObjectPermission, UserObjectPermission

from core.audit import AuditAction, audit_log

from .models import ApiKey, Department, DepartmentQuota, Membership, Role, User
from .policy import department_policy, is_company_admin, membership_policy, user_policy


@transaction.atomic
def department_create(
    *, actor: Any, name: str, code: str, name_zh: str = "", parent: Department | None = None, ip: str | None = None
) -> Department:
    if not department_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    department = Department(name=name, name_zh=name_zh, code=code, parent=parent)
    department.full_clean()
    department.save()
    audit_log(actor=actor, action=AuditAction.CREATE, obj=department, department=department, ip=ip)
    return department


@transaction.atomic
def department_update(*, actor: Any, department: Department, ip: str | None = None, **fields: Any) -> Department:
    if not department_policy.user_has_permission_for_instance(actor, "change", department):
        raise PermissionDenied
    # A department's admins may rename it; where it sits and its code are the company admins'.
    if not is_company_admin(actor):
        moved = [name for name in ("code", "parent") if name in fields and getattr(department, name) != fields[name]]
        if moved:
            raise ValidationError({name: _("Only company admins may change a department's code or parent.")
                                   for name in moved})
    changed = {}
    for name in ("name", "name_zh", "code", "parent"):
        if name in fields and getattr(department, name) != fields[name]:
            changed[name] = str(fields[name]) if fields[name] is not None else None
            setattr(department, name, fields[name])
    department.full_clean()
    department.save()
    audit_log(actor=actor, action=AuditAction.EDIT, obj=department, department=department, ip=ip, changed=changed)
    return department


@transaction.atomic
def department_delete(*, actor: Any, department: Department, ip: str | None = None) -> None:
    """Delete a department with its memberships and guardian grants, audited as one company-level
    row (the department row it would point at is gone). Refused while anything that must outlive
    it refers to it: knowledge bases, sub-departments, assistants restricted to it (without it
    they would be open to everyone), or its audit history (append-only)."""
    from core.models import AuditEntry

    if not department_policy.user_has_permission_for_instance(actor, "delete", department):
        raise PermissionDenied
    department = Department.objects.select_for_update().get(pk=department.pk)
    if department.knowledge_bases.exists():
        raise ValidationError(_("Department “%(name)s” still owns knowledge bases: move or remove them first.")
                              % {"name": department.name})
    if department.children.exists():
        raise ValidationError(_("Department “%(name)s” has sub-departments: move or remove them first.")
                              % {"name": department.name})
    assistants = list(department.assistants.order_by("name").values_list("name", flat=True))
    if assistants:
        raise ValidationError(
            _("Department “%(name)s” restricts the assistants %(assistants)s: change their departments or "
              "remove them first.") % {"name": department.name, "assistants": ", ".join(f"“{a}”" for a in assistants)}
        )
    if AuditEntry.objects.filter(department=department).exists():
        raise ValidationError(
            _("Department “%(name)s” has an audit history, which is kept for good: it cannot be deleted.")
            % {"name": department.name}
        )
    memberships = list(department.memberships.select_related("user").order_by("user__username"))
    content_type = ContentType.objects.get_for_model(Department)
    grants = UserObjectPermission.objects.filter(content_type=content_type, object_pk=str(department.pk))
    group_grants = GroupObjectPermission.objects.filter(content_type=content_type, object_pk=str(department.pk))
    audit_log(
        actor=actor,
        action=AuditAction.DELETE,
        obj=department,
        department=None,
        ip=ip,
        code=department.code,
        name=department.name,
        memberships=[{"user": m.user.username, "role": m.role} for m in memberships],
        object_permissions=sorted(f"{g.user.username}:{g.permission.codename}" for g in grants.select_related(
            "user", "permission")),
        group_object_permissions=sorted(f"{g.group.name}:{g.permission.codename}" for g in group_grants.select_related(
            "group", "permission")),
    )
    grants.delete()
    group_grants.delete()
    department.memberships.all().delete()
    department.delete()


@transaction.atomic
def user_create(
    *,
    actor: Any,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    department: Department | None = None,
    role: str | None = None,
    is_demo: bool = False,
    ip: str | None = None,
) -> User:
    if not user_policy.user_has_permission(actor, "add"):
        raise PermissionDenied
    if department is None and not (actor.is_superuser or actor.has_perm("accounts.manage_members")):
        # A department admin must place the new user in a department they administer.
        raise ValidationError({"department": "Choose a department for the new user."})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_demo=is_demo)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    audit_log(actor=actor, action=AuditAction.CREATE, obj=user, ip=ip)
    if department is not None:
        membership_set(actor=actor, user=user, department=department, role=role or Role.EMPLOYEE, ip=ip)
    return user


def user_active_changeable(*, actor: Any, user: User) -> bool:
    """Beside the policy (company admins): never one's own account, a superuser only by a superuser."""
    return user.pk != actor.pk and (actor.is_superuser or not user.is_superuser)


@transaction.atomic
def user_set_active(*, actor: Any, user: User, active: bool, ip: str | None = None) -> int:
    """Deactivate an account (someone who left) or reactivate it; company admins only, never their
    own, and only a superuser changes a superuser. A deactivated user cannot sign in, their sessions
    end on their next request (the backend refuses inactive users) and every active API key of
    theirs is revoked, so reactivating does not bring old keys back. Returns the keys revoked."""
    if not user_policy.user_has_permission_for_instance(actor, "change", user):
        raise PermissionDenied
    if user.pk == actor.pk:
        raise ValidationError(_("You cannot deactivate your own account."))
    if not user_active_changeable(actor=actor, user=user):
        raise PermissionDenied
    user = User.objects.select_for_update().get(pk=user.pk)
    revoked = 0
    if not active:
        revoked = ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_log(actor=actor, action=AuditAction.PERMISSION_CHANGE, obj=user, ip=ip,
                  event="user_activated" if active else "user_deactivated", user=user.username, api_keys_revoked=revoked)
    return revoked


@transaction.atomic
def membership_set(*, actor: Any, user: User, department: Department, role: str, ip: str | None = None) -> Membership:
    """Give `user` `role` in `department`, replacing the role they had there."""
    from .policy import Capability, user_has_capability

    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    if not user_has_capability(actor, Capability.MANAGE_MEMBERS, department):
        raise PermissionDenied
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, department=department, defaults={"role": role}
    )
    previous = None if created else membership.role
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    audit_log(
        actor=actor,
        action=AuditAction.PERMISSION_CHANGE,
        obj=membership,
        department=department,
        ip=ip,
        user=user.username,
        role=role,
        previous_role=previous,
    )
    return membership


@transaction.atomic
def membership_delete(*, actor: Any, membership: Membership, ip: str | None = None) -> None:
    if not membership_policy.user_has_permission_for_instance(actor, "delete", membership):
        raise PermissionDenied
    audit_log(
        actor=actor,
        action=AuditAction.PERMISSION_CHANGE,
        obj=membership,
        department=membership.department,
        ip=ip,
        user=membership.user.username,
        role=None,
        previous_role=membership.role,
    )
    membership.delete()


API_KEY_PREFIX = "dsk-"


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def api_key_create(*, user: User, name: str = "", ip: str | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`: returns the row and the plain key, which is never stored."""
    # Lock the user row so two concurrent creations cannot both pass the limit.
    User.objects.select_for_update().filter(pk=user.pk).first()
    active = ApiKey.objects.filter(user=user, revoked_at__isnull=True).count()
    if active >= settings.API_KEYS_PER_USER:
        raise ValidationError(
            {"name": _("You already have %(n)d active API keys. Revoke one first.") % {"n": active}}
        )
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(user=user, name=name.strip()[:100], prefix=key[:12], digest=api_key_digest(key))
    audit_log(actor=user, action=AuditAction.CREATE, obj=api_key, ip=ip, prefix=api_key.prefix, name=api_key.name)
    return api_key, key


@transaction.atomic
def api_key_revoke(*, actor: Any, api_key: ApiKey, ip: str | None = None) -> ApiKey:
    """Revoke a key at once. Only its owner (or a superuser) may; revoking twice changes nothing."""
    if not (actor.pk == api_key.user_id or actor.is_superuser):
        raise PermissionDenied
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_log(
            actor=actor, action=AuditAction.PERMISSION_CHANGE, obj=api_key, ip=ip,
            event="api_key_revoked", prefix=api_key.prefix, user=api_key.user.username,
        )
    return api_key


@transaction.atomic
def department_quota_set(
    *,
    actor: Any,
    department: Department,
    daily_tokens: int | None,
    user_requests_per_minute: int | None,
    ip: str | None = None,
) -> DepartmentQuota:
    """Set a department's chat limits (None: the settings default; 0: unlimited). Company admins only."""
    if not is_company_admin(actor):
        raise PermissionDenied
    for field, value in (("daily_tokens", daily_tokens), ("user_requests_per_minute", user_requests_per_minute)):
        if value is not None and (not isinstance(value, int) or value < 0 or value > 10**12):
            raise ValidationError({field: _("Enter a whole number from 0 upwards, or leave it empty.")})
    quota, _created = DepartmentQuota.objects.select_for_update().get_or_create(department=department)
    previous = {"daily_tokens": quota.daily_tokens, "user_requests_per_minute": quota.user_requests_per_minute}
    quota.daily_tokens = daily_tokens
    quota.user_requests_per_minute = user_requests_per_minute
    quota.save()
    audit_log(
        actor=actor, action=AuditAction.EDIT, obj=quota, department=department, ip=ip,
        daily_tokens=daily_tokens, user_requests_per_minute=user_requests_per_minute, previous=previous,
    )
    return quota
