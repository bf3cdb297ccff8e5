"""The permission policy: the one place that says who may do what.

Every view, API endpoint, task, search and export asks a policy object; nothing re-implements
a rule. Rules are built from two sources:

- department roles (a `Membership` of a user in a department with a role), and
- django-guardian permissions on `Department`: an object permission covers one department,
  a global (model-level) permission covers every department.

A policy answers three questions (after Wagtail's permission policies):
`user_has_permission(user, action)`, `user_has_permission_for_instance(user, action, obj)` and
`instances_user_has_permission_for(user, action)`, which returns a queryset that can be used
as a filter inside any SQL query. `instance_for_user(user, action, pk)` fetches and authorizes in
one call and raises Http404 for both a missing and a forbidden object.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from .models import ApiKey, Department, Membership, Role, User

M = TypeVar("M", bound=models.Model)


class Capability(str, enum.Enum):
    """What a user may do with the knowledge and people of one department."""

    VIEW_KNOWLEDGE = "view_knowledge"
    MANAGE_KNOWLEDGE = "manage_knowledge"
    REVIEW_KNOWLEDGE = "review_knowledge"
    MANAGE_MEMBERS = "manage_members"

    @property
    def perm(self) -> str:
        return f"accounts.{self.value}"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset({Capability.VIEW_KNOWLEDGE, Capability.MANAGE_KNOWLEDGE, Capability.MANAGE_MEMBERS}),
    Role.KNOWLEDGE_MANAGER: frozenset({Capability.VIEW_KNOWLEDGE, Capability.MANAGE_KNOWLEDGE}),
    Role.COMPLIANCE_REVIEWER: frozenset({Capability.VIEW_KNOWLEDGE, Capability.REVIEW_KNOWLEDGE}),
    Role.EMPLOYEE: frozenset({Capability.VIEW_KNOWLEDGE}),
}

# Editing or reviewing knowledge needs reading it: a grant of either also grants reading.
GRANTED_BY: dict[Capability, frozenset[Capability]] = {
    Capability.VIEW_KNOWLEDGE: frozenset(
        {Capability.VIEW_KNOWLEDGE, Capability.MANAGE_KNOWLEDGE, Capability.REVIEW_KNOWLEDGE}
    ),
    Capability.MANAGE_KNOWLEDGE: frozenset({Capability.MANAGE_KNOWLEDGE}),
    Capability.REVIEW_KNOWLEDGE: frozenset({Capability.REVIEW_KNOWLEDGE}),
    Capability.MANAGE_MEMBERS: frozenset({Capability.MANAGE_MEMBERS}),
}


def is_active_user(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _has_global(user: User, capability: Capability) -> bool:
    return any(user.has_perm(granting.perm) for granting in GRANTED_BY[capability])


def departments_for(user: Any, capability: Capability) -> QuerySet[Department]:
    """The departments in which `user` holds `capability` (a lazy queryset, usable as a subquery).

    The membership and object-permission part is built once per user object (a request's
    `request.user`, a task's loaded user) and cloned for each caller: building it costs about
    10 ms of Python (guardian), and one page asks for it a dozen times. What is cached is the
    unevaluated SQL, never its rows, so a membership granted or revoked later in the same request
    is seen by the next query that uses it.
    """
    if not is_active_user(user):
        return Department.objects.none()
    if user.is_superuser or _has_global(user, capability):
        return Department.objects.all()
    cache = getattr(user, "_policy_departments", None)
    if cache is None:
        cache = {}
        user._policy_departments = cache
    built = cache.get(capability)
    if built is None:
        built = cache[capability] = _departments_by_grant(user, capability)
    return built.all()


def _departments_by_grant(user: User, capability: Capability) -> QuerySet[Department]:
    granting = GRANTED_BY[capability]
    roles = [role for role, caps in ROLE_CAPABILITIES.items() if caps & granting]
    by_role = Membership.objects.filter(user=user, role__in=roles).values("department_id")
    by_object_perm = get_objects_for_user(
        user,
        [c.perm for c in granting],
        klass=Department,
        any_perm=True,
        with_superuser=False,
        accept_global_perms=False,
    ).values("pk")
    return Department.objects.filter(Q(pk__in=by_role) | Q(pk__in=by_object_perm))


def user_has_capability(user: Any, capability: Capability, department: Department | int) -> bool:
    department_id = department if isinstance(department, int) else department.pk
    return departments_for(user, capability).filter(pk=department_id).exists()


def user_has_capability_anywhere(user: Any, capability: Capability) -> bool:
    return departments_for(user, capability).exists()


def is_company_admin(user: Any) -> bool:
    """Administers the whole company: people, departments, models."""
    return is_active_user(user) and (user.is_superuser or user.has_perm(Capability.MANAGE_MEMBERS.perm))


def is_admin(user: Any) -> bool:
    """A company admin, or the admin of at least one department."""
    return is_company_admin(user) or (
        is_active_user(user) and Membership.objects.filter(user=user, role=Role.ADMIN).exists()
    )


class PermissionPolicy(Generic[M]):
    """Base of every policy. Subclasses set `model` and `actions` and implement the queryset."""

    model: ClassVar[type[models.Model]]
    actions: ClassVar[frozenset[str]] = frozenset({"view", "add", "change", "delete"})

    def _check_action(self, action: str) -> None:
        if action not in self.actions:
            raise ValueError(f"{type(self).__name__} has no action {action!r}")

    def user_has_permission(self, user: Any, action: str) -> bool:
        """May `user` do `action` on at least one object (or create one, for 'add')?"""
        self._check_action(action)
        return self.instances_user_has_permission_for(user, action).exists()

    def user_has_permission_for_instance(self, user: Any, action: str, instance: M) -> bool:
        self._check_action(action)
        if instance.pk is None:
            return False
        return self.instances_user_has_permission_for(user, action).filter(pk=instance.pk).exists()

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[M]:
        raise NotImplementedError

    def instance_for_user(self, user: Any, action: str, pk: Any) -> M:
        """Fetch by primary key and authorize in one call; missing and forbidden look the same."""
        self._check_action(action)
        try:
            return self.instances_user_has_permission_for(user, action).get(pk=pk)
        except (self.model.DoesNotExist, ValueError, TypeError, models.ObjectDoesNotExist, ValidationError):
            raise Http404 from None  # ValidationError: not a key of that type at all ("abc" for a UUID)


class DepartmentPolicy(PermissionPolicy[Department]):
    """The department directory is visible to every signed-in user; company admins edit it,
    a department's admins may rename their own department."""

    model = Department

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return is_company_admin(user)
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Department]:
        self._check_action(action)
        if not is_active_user(user):
            return Department.objects.none()
        if action == "view":
            return Department.objects.all()
        if action == "change":
            return departments_for(user, Capability.MANAGE_MEMBERS)
        # add/delete: the company's admins only
        return Department.objects.all() if is_company_admin(user) else Department.objects.none()


class MembershipPolicy(PermissionPolicy[Membership]):
    """Users see their own memberships; people admins of a department see and edit its members."""

    model = Membership

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return user_has_capability_anywhere(user, Capability.MANAGE_MEMBERS)
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Membership]:
        self._check_action(action)
        if not is_active_user(user):
            return Membership.objects.none()
        managed = Membership.objects.filter(department__in=departments_for(user, Capability.MANAGE_MEMBERS))
        if action == "view":
            return Membership.objects.filter(Q(user=user) | Q(pk__in=managed.values("pk")))
        return managed


class UserPolicy(PermissionPolicy[User]):
    """Users see themselves and the people of departments they administer; company admins see all."""

    model = User

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return user_has_capability_anywhere(user, Capability.MANAGE_MEMBERS)
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[User]:
        self._check_action(action)
        if not is_active_user(user):
            return User.objects.none()
        if is_company_admin(user):
            return User.objects.all()
        if action in {"change", "delete"}:
            return User.objects.none()
        managed = Membership.objects.filter(
            department__in=departments_for(user, Capability.MANAGE_MEMBERS)
        ).values("user_id")
        return User.objects.filter(Q(pk=user.pk) | Q(pk__in=managed))


class ApiKeyPolicy(PermissionPolicy[ApiKey]):
    """A user sees and revokes their own API keys; superusers (Django admin) any."""

    model = ApiKey
    actions = frozenset({"view", "add", "delete"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return is_active_user(user)
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[ApiKey]:
        self._check_action(action)
        if not is_active_user(user):
            return ApiKey.objects.none()
        return ApiKey.objects.filter(user=user)


department_policy = DepartmentPolicy()
api_key_policy = ApiKeyPolicy()
membership_policy = MembershipPolicy()
user_policy = UserPolicy()
