"""Who may use an assistant, configure assistants and model endpoints, and read a conversation.

- Use an assistant: active, and either open to everyone (no departments listed) or the user
  reads knowledge in one of its departments. Admins and knowledge managers see the ones they
  configure too. Using one never widens what its searches may return: search() runs as the user.
- Configure assistants (see their configuration, change, delete): company admins, every one;
  a knowledge manager, the ones restricted to departments that are all among the departments
  where they manage knowledge. One with no departments (company-wide, the default included) is
  the admins' alone. A non-admin creates one only restricted to departments they manage.
  Whoever only uses one sees its name and description, never its configuration.
- Configure model endpoints: company admins.
- Conversations and their messages: only their owner.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Department
from accounts.policy import (
    Capability,
    PermissionPolicy,
    departments_for,
    is_active_user,
    is_company_admin,
    user_has_capability_anywhere,
)

from .models import Assistant, Conversation, Message, ModelEndpoint


def may_configure_assistants(user: Any) -> bool:
    return is_company_admin(user) or (is_active_user(user) and user_has_capability_anywhere(user, Capability.MANAGE_KNOWLEDGE))


def assistant_departments_for(user: Any) -> QuerySet[Department]:
    """The departments an assistant configured by `user` may be restricted to."""
    if is_company_admin(user):
        return Department.objects.all()
    return departments_for(user, Capability.MANAGE_KNOWLEDGE)


class AssistantPolicy(PermissionPolicy[Assistant]):
    model = Assistant
    actions = frozenset({"view", "use", "add", "change", "delete"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action in ("use", "view"):
            return is_active_user(user)
        return may_configure_assistants(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Assistant]:
        self._check_action(action)
        if not is_active_user(user):
            return Assistant.objects.none()
        if action == "view":
            # The ones they configure and the ones they may use (the API shows the latter's name only).
            configured = self.instances_user_has_permission_for(user, "change").values("pk")
            used = self.instances_user_has_permission_for(user, "use").values("pk")
            return Assistant.objects.filter(Q(pk__in=configured) | Q(pk__in=used))
        if action == "use":
            departments = departments_for(user, Capability.VIEW_KNOWLEDGE)
            open_or_member = Q(departments__isnull=True) | Q(departments__in=departments)
            ids = Assistant.objects.filter(open_or_member, active=True).values("pk")
            return Assistant.objects.filter(pk__in=ids)
        if is_company_admin(user):
            return Assistant.objects.all()
        if not user_has_capability_anywhere(user, Capability.MANAGE_KNOWLEDGE):
            return Assistant.objects.none()
        # Restricted to at least one department, and to none outside the ones they manage.
        restrictions = Assistant.departments.through.objects
        outside = restrictions.exclude(department__in=departments_for(user, Capability.MANAGE_KNOWLEDGE))
        return Assistant.objects.filter(pk__in=restrictions.values("assistant_id")).exclude(
            pk__in=outside.values("assistant_id"))

    def user_may_restrict_to(self, user: Any, departments) -> bool:
        """May `user` save an assistant restricted to exactly `departments` (none: company-wide)?"""
        if is_company_admin(user):
            return True
        wanted = {department.pk for department in departments}
        managed = assistant_departments_for(user).filter(pk__in=wanted).count()
        return bool(wanted) and managed == len(wanted)


class ModelEndpointPolicy(PermissionPolicy[ModelEndpoint]):
    model = ModelEndpoint

    def choices_for_assistant(self, user: Any, current_id: int | None = None) -> QuerySet[ModelEndpoint]:
        """The endpoints `user` may give an assistant: every one for admins, else the enabled ones
        (and the one it has)."""
        if is_company_admin(user):
            return ModelEndpoint.objects.all()
        return ModelEndpoint.objects.filter(Q(enabled=True) | Q(pk=current_id))

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        return is_company_admin(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[ModelEndpoint]:
        self._check_action(action)
        return ModelEndpoint.objects.all() if is_company_admin(user) else ModelEndpoint.objects.none()


class ConversationPolicy(PermissionPolicy[Conversation]):
    model = Conversation

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        return is_active_user(user)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Conversation]:
        self._check_action(action)
        if not is_active_user(user):
            return Conversation.objects.none()
        return Conversation.objects.filter(user=user)


class MessagePolicy(PermissionPolicy[Message]):
    model = Message
    actions = frozenset({"view", "feedback"})

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Message]:
        self._check_action(action)
        if not is_active_user(user):
            return Message.objects.none()
        return Message.objects.filter(conversation__user=user)


assistant_policy = AssistantPolicy()
endpoint_policy = ModelEndpointPolicy()
conversation_policy = ConversationPolicy()
message_policy = MessagePolicy()
