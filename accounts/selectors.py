from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from knowledge.policy import knowledge_base_policy, review_policy

from .models import Department, Membership, User
from .policy import (
    Capability,
    department_policy,
    departments_for,
    is_active_user,
    is_admin,
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


def navigation_for(*, user: Any) -> Navigation:
    """What the top bar offers: each entry asks the policy that guards the page behind it."""
    if not is_active_user(user):
        return Navigation()
    return Navigation(
        # Any readable knowledge base, company-wide shared ones included (no membership needed).
        knowledge=knowledge_base_policy.user_may_browse(user),
        chat=True,
        training=is_admin(user),
        compliance=review_policy.user_has_permission(user, "review"),
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
