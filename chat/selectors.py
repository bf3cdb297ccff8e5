"""Every read of the chat app, taking the acting user."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from knowledge.policy import version_policy

from .models import Assistant, Channel, Citation, Conversation, Message
from .policy import assistant_policy, conversation_policy, message_policy


def assistant_list(*, user) -> QuerySet[Assistant]:
    return assistant_policy.instances_user_has_permission_for(user, "use").order_by("-is_default", "name")


def assistant_get(*, user, pk) -> Assistant:
    return assistant_policy.instance_for_user(user, "use", pk)


def assistant_default(*, user) -> Assistant | None:
    return assistant_list(user=user).first()


def conversation_list(*, user, limit: int = 100) -> QuerySet[Conversation]:
    return (conversation_policy.instances_user_has_permission_for(user, "view")
            .filter(channel=Channel.WEB).select_related("assistant")[:limit])


def conversation_get(*, user, pk) -> Conversation:
    return conversation_policy.instance_for_user(user, "view", pk)


def conversation_messages(*, user, conversation: Conversation, limit: int = 200) -> list[Message]:
    """The last `limit` turns, oldest first, with their cited sources and the user's feedback.
    Each citation's `readable` says whether the user may still open the cited version (access
    can be lost after the answer): one query through the version policy for the whole page."""
    qs = (message_policy.instances_user_has_permission_for(user, "view")
          .filter(conversation=conversation)
          .prefetch_related(Prefetch("citations", queryset=Citation.objects.order_by("marker")), "feedback")
          .order_by("-pk")[:limit])
    messages = list(reversed(list(qs)))
    citations = [citation for message in messages for citation in message.citations.all()]
    refs = {citation.version_ref for citation in citations if citation.cited}
    readable = set(version_policy.instances_user_has_permission_for(user, "view").filter(pk__in=refs)
                   .values_list("pk", flat=True)) if refs else set()
    for citation in citations:
        citation.readable = citation.version_ref in readable
    return messages


def message_get(*, user, pk) -> Message:
    return message_policy.instance_for_user(user, "view", pk)
