"""Who may use an assistant, configure assistants and model endpoints, and read a conversation.

- Use an assistant: active, and either open to everyone (no departments listed) or the user
  reads knowledge in one of its departments. Admins and knowledge managers see the ones they
  configure too. Using one never widens what its searches may return: search() runs as the user.
- Configure assistants: company admins and knowledge managers (of any department).
- Configure model endpoints: company admins.
- Conversations and their messages: only their owner.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

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
            # Configurers see every assistant; others the ones they may use.
            return Assistant.objects.all() if may_configure_assistants(user) else self.instances_user_has_permission_for(user, "use")
        if action == "use":
            departments = departments_for(user, Capability.VIEW_KNOWLEDGE)
            open_or_member = Q(departments__isnull=True) | Q(departments__in=departments)
            ids = Assistant.objects.filter(open_or_member, active=True).values("pk")
            return Assistant.objects.filter(pk__in=ids)
        if may_configure_assistants(user):
            return Assistant.objects.all()
        return Assistant.objects.none()


class ModelEndpointPolicy(PermissionPolicy[ModelEndpoint]):
    model = ModelEndpoint

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
