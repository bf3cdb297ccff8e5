"""Who may manage sources: the knowledge managers and admins of the knowledge base's owning
department (the same people who edit its documents). Everyone else gets a 404, not a 403.
The host allowlist belongs to the company admins."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.policy import PermissionPolicy, departments_for, is_active_user, is_company_admin, Capability
from knowledge.policy import knowledge_base_policy

from .models import AllowedHost, Source, SourceSync


def _managed_departments(user: Any):
    return departments_for(user, Capability.MANAGE_KNOWLEDGE)


class SourcePolicy(PermissionPolicy[Source]):
    model = Source
    actions = frozenset({"view", "add", "change", "delete", "sync"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return _managed_departments(user).exists()
        return super().user_has_permission(user, action)

    def user_may_add_in(self, user: Any, knowledge_base: Any) -> bool:
        return knowledge_base_policy.user_has_permission_for_instance(user, "change", knowledge_base)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Source]:
        self._check_action(action)
        if not is_active_user(user):
            return Source.objects.none()
        # Sources hold credentials and queries: even reading them is for managers only.
        return Source.objects.filter(knowledge_base__department__in=_managed_departments(user))


class SourceSyncPolicy(PermissionPolicy[SourceSync]):
    model = SourceSync
    actions = frozenset({"view"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[SourceSync]:
        self._check_action(action)
        return SourceSync.objects.filter(source__in=source_policy.instances_user_has_permission_for(user, "view"))


class AllowedHostPolicy(PermissionPolicy[AllowedHost]):
    model = AllowedHost

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        return is_company_admin(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[AllowedHost]:
        self._check_action(action)
        return AllowedHost.objects.all() if is_company_admin(user) else AllowedHost.objects.none()


source_policy = SourcePolicy()
source_sync_policy = SourceSyncPolicy()
allowed_host_policy = AllowedHostPolicy()
