from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from knowledge.policy import knowledge_base_policy, review_policy

from .models import ApiKey, Department, Membership, User
from .policy import (
    Capability,
    api_key_policy,
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
    hit_testing: bool = False
    admin: bool = False
    django_admin: bool = False


def _may_use_training(user: Any) -> bool:
    from training.policy import user_may_use_training  # training depends on accounts, not the reverse

    return user_may_use_training(user)


def navigation_for(*, user: Any) -> Navigation:
    """What the top bar offers: each entry asks the policy that guards the page behind it."""
    if not is_active_user(user):
        return Navigation()
    return Navigation(
        # Any readable knowledge base, company-wide shared ones included (no membership needed).
        knowledge=knowledge_base_policy.user_may_browse(user),
        chat=True,
        training=_may_use_training(user),
        compliance=review_policy.user_has_permission(user, "review"),
        # Knowledge managers and admins test retrieval on the knowledge bases they manage.
        hit_testing=knowledge_base_policy.user_has_permission(user, "add"),
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


def api_key_list(*, user: Any) -> QuerySet[ApiKey]:
    return api_key_policy.instances_user_has_permission_for(user, "view").order_by("-created_at", "-pk")


@dataclass(frozen=True)
class DepartmentUsage:
    department_id: int | None
    name: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    mean_latency_ms: int
    tokens_today: int
    daily_tokens: int  # the effective quota (0: unlimited)
    daily_tokens_override: int | None
    rpm_override: int | None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_report(*, user: Any, days: int = 14, today=None) -> dict:
    """Chat usage per department and day over the last `days` days, for company admins.
    Returns the chart data (labels = days, one series of total tokens per department) and one
    summary row per department (every department, also those that used nothing)."""
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import Sum
    from django.utils import timezone
    from django.utils.translation import gettext as _

    from .models import DepartmentQuota, UsageDay

    if not is_company_admin(user):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    labels = [(first + timedelta(days=i)) for i in range(days)]
    rows = (
        UsageDay.objects.filter(day__gte=first, day__lte=today)
        .values("department_id", "day")
        .annotate(requests=Sum("requests"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                  latency=Sum("latency_ms"))
    )
    by_department: dict[int | None, dict] = {}
    for row in rows:
        entry = by_department.setdefault(row["department_id"], {"days": {}, "requests": 0, "prompt": 0, "completion": 0, "latency": 0})
        entry["days"][row["day"]] = int(row["prompt"] or 0) + int(row["completion"] or 0)
        for key in ("requests", "prompt", "completion", "latency"):
            entry[key] += int(row[key] or 0)
    quotas = {q.department_id: q for q in DepartmentQuota.objects.all()}
    departments = list(Department.objects.order_by("name"))
    names: dict[int | None, str] = {d.pk: d.display_name for d in departments}
    names[None] = _("No department")
    summary, series = [], []
    for department_id in [d.pk for d in departments] + ([None] if None in by_department else []):
        entry = by_department.get(department_id, {"days": {}, "requests": 0, "prompt": 0, "completion": 0, "latency": 0})
        quota = quotas.get(department_id)
        effective = settings.CHAT_DEPARTMENT_DAILY_TOKENS if department_id else 0
        if quota is not None and quota.daily_tokens is not None:
            effective = quota.daily_tokens
        summary.append(DepartmentUsage(
            department_id=department_id,
            name=names[department_id],
            requests=entry["requests"],
            prompt_tokens=entry["prompt"],
            completion_tokens=entry["completion"],
            mean_latency_ms=round(entry["latency"] / entry["requests"]) if entry["requests"] else 0,
            tokens_today=entry["days"].get(today, 0),
            daily_tokens=effective,
            daily_tokens_override=quota.daily_tokens if quota else None,
            rpm_override=quota.user_requests_per_minute if quota else None,
        ))
        if entry["requests"]:
            series.append({"label": names[department_id], "data": [entry["days"].get(day, 0) for day in labels]})
    return {
        "chart": {"labels": [day.isoformat() for day in labels], "series": series},
        "summary": summary,
        "first": first,
        "today": today,
    }
