from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from .models import Department, Membership, User
from .policy import (
    Capability,
    department_policy,
    departments_for,
    is_active_user,
    is_company_admin,
    membership_policy,
    user_has_capability_anywhere,
    user_policy,
)


@dataclass(frozen=True)
class Navigation:
    knowledge: bool = False
    chat: bool = False
    training: bool = False
    compliance: bool = False
    admin: bool = False
    django_admin: bool = False


def _may_use_training(user: Any) -> bool:
    from training.policy import user_may_use_training  # training depends on accounts, not the reverse

    return user_may_use_training(user)


def navigation_for(*, user: Any) -> Navigation:
    if not is_active_user(user):
        return Navigation()
    return Navigation(
        knowledge=user_has_capability_anywhere(user, Capability.VIEW_KNOWLEDGE),
        chat=True,
        training=_may_use_training(user),
        compliance=user_has_capability_anywhere(user, Capability.REVIEW_KNOWLEDGE),
        admin=user_has_capability_anywhere(user, Capability.MANAGE_MEMBERS),
        django_admin=bool(user.is_superuser),
    )


def department_list(*, user: Any) -> QuerySet[Department]:
    return department_policy.instances_user_has_permission_for(user, "view").select_related("parent")


def membership_list(*, user: Any) -> QuerySet[Membership]:
    return membership_policy.instances_user_has_permission_for(user, "view").select_related("user", "department")


def user_memberships(*, user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("department") if is_active_user(user) else (
        Membership.objects.none()
    )


def people_list(*, user: Any) -> QuerySet[User]:
    """Users the acting user may see, with the memberships the acting user may see."""
    visible_memberships = membership_list(user=user)
    return (
        user_policy.instances_user_has_permission_for(user, "view")
        .order_by("username")
        .prefetch_related(Prefetch("memberships", queryset=visible_memberships, to_attr="visible_memberships"))
    )


def managed_departments(*, user: Any) -> QuerySet[Department]:
    return departments_for(user, Capability.MANAGE_MEMBERS)


def can_manage_departments(*, user: Any) -> bool:
    return is_company_admin(user)
