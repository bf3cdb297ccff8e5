"""Every write on users, departments and memberships. Each authorizes through the policy and
writes an audit entry."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from guardian.models import GroupObjectPermission, UserObjectPermission
from rest_framework.authtoken.models import Token

from core.audit import AuditAction, audit_log

from .models import Department, Membership, Role, User
from .policy import department_policy, membership_policy, user_policy


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
    it refers to it: knowledge bases, sub-departments, or its audit history (append-only)."""
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


@transaction.atomic
def api_token_regenerate(*, user: User) -> Token:
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
