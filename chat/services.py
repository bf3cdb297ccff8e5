"""Every write of the chat app: conversations, feedback, assistants, model endpoints."""

from __future__ import annotations

import os
import threading

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import AuditAction, audit_log
from knowledge.policy import knowledge_base_policy
from sources.crypto import encrypt

from .models import Assistant, Conversation, EndpointKind, Feedback, Message, MessageStatus, ModelEndpoint, Role
from .policy import assistant_policy

# --- conversations -------------------------------------------------------------------------------


@transaction.atomic
def conversation_create(*, user, assistant, title: str = "") -> Conversation:
    return Conversation.objects.create(user=user, assistant=assistant, title=title[:200])


@transaction.atomic
def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title"])
    return conversation


@transaction.atomic
def conversation_set_assistant(*, conversation: Conversation, assistant: Assistant) -> Conversation:
    conversation.assistant = assistant
    conversation.save(update_fields=["assistant"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


# --- generation control --------------------------------------------------------------------------

_running: dict[int, threading.Event] = {}
_running_lock = threading.Lock()


def generation_register(message_id: int, event: threading.Event) -> None:
    with _running_lock:
        _running[message_id] = event


def generation_unregister(message_id: int) -> None:
    with _running_lock:
        _running.pop(message_id, None)


def generation_stop(*, message: Message) -> bool:
    """Stop an answer being generated in this process (the stream's own connection closing stops
    it anywhere)."""
    with _running_lock:
        event = _running.get(message.pk)
    if event is not None:
        event.set()
        return True
    return False


STALE_AFTER_S = 15 * 60


def messages_reap_stale() -> int:
    """Answers left 'streaming' by a process that died: failed, so they can be regenerated."""
    cutoff = timezone.now() - timezone.timedelta(seconds=STALE_AFTER_S)
    return Message.objects.filter(status=MessageStatus.STREAMING, created_at__lt=cutoff).update(
        status=MessageStatus.FAILED, error_message="generation was interrupted", finished_at=timezone.now()
    )


# --- feedback ------------------------------------------------------------------------------------


@transaction.atomic
def feedback_submit(*, user, message: Message, rating: int, correction: str = "") -> Feedback:
    """One feedback per user and answer (a second one replaces the first), with what training needs:
    the question, the retrieved chunk ids, the answer as given and the correction."""
    if message.role != Role.ASSISTANT:
        raise ValueError("feedback is given on answers")
    feedback, _ = Feedback.objects.update_or_create(
        message=message, user=user,
        defaults={
            "rating": 1 if rating > 0 else -1,
            "correction": (correction or "").strip()[:20000],
            "question": message.question,
            "answer": message.content,
            "retrieved_chunk_ids": [r["chunk_id"] for r in message.retrieved],
        },
    )
    return feedback


# --- assistants ----------------------------------------------------------------------------------

ASSISTANT_FIELDS = ("name", "description", "system_prompt", "endpoint", "retrieval_settings", "active")


@transaction.atomic
def assistant_save(*, actor, assistant: Assistant | None = None, knowledge_bases=None, departments=None,
                   **fields) -> Assistant:
    """`knowledge_bases`: the ones chosen among those `actor` reads; attached ones they cannot
    read stay attached. `departments`: a non-admin restricts it to departments they manage (at
    least one). The caller has checked that `actor` may change `assistant`."""
    created = assistant is None
    if (created or departments is not None) and not assistant_policy.user_may_restrict_to(actor, departments or []):
        raise ValidationError({"departments": _("Choose at least one department, each one where you manage knowledge.")})
    if knowledge_bases is not None:
        readable = set(knowledge_base_policy.readable_ids(actor))
        if any(kb.pk not in readable for kb in knowledge_bases):
            raise ValidationError({"knowledge_bases": _("Only knowledge bases you may read can be attached.")})
    assistant = assistant or Assistant(created_by=actor)
    for name, value in fields.items():
        if name in ASSISTANT_FIELDS:
            setattr(assistant, name, value)
    assistant.save()
    if knowledge_bases is not None:
        kept = [] if created else list(assistant.knowledge_bases.exclude(pk__in=readable))
        assistant.knowledge_bases.set([*knowledge_bases, *kept])
    if departments is not None:
        assistant.departments.set(departments)
    audit_log(actor=actor, action=AuditAction.CREATE if created else AuditAction.EDIT, obj=assistant,
              knowledge_bases=[kb.pk for kb in assistant.knowledge_bases.all()],
              endpoint=assistant.endpoint_id)
    return assistant


@transaction.atomic
def assistant_delete(*, actor, assistant: Assistant) -> None:
    if assistant.is_default:
        raise ValueError("the default assistant cannot be deleted")
    audit_log(actor=actor, action=AuditAction.ARCHIVE, obj=assistant)
    assistant.delete()


# --- model endpoints -----------------------------------------------------------------------------

ENDPOINT_FIELDS = ("name", "kind", "base_url", "model", "tokenizer_path", "context_window", "max_tokens",
                   "temperature", "connect_timeout_s", "read_timeout_s", "enabled")


@transaction.atomic
def endpoint_save(*, actor, endpoint: ModelEndpoint | None = None, api_key: str | None = None, **fields) -> ModelEndpoint:
    """api_key None keeps the stored key, "" removes it; it is stored encrypted, never logged."""
    created = endpoint is None
    endpoint = endpoint or ModelEndpoint(created_by=actor)
    for name, value in fields.items():
        if name in ENDPOINT_FIELDS:
            setattr(endpoint, name, value)
    if api_key is not None:
        endpoint.api_key_encrypted = encrypt(api_key)
    endpoint.save()
    audit_log(actor=actor, action=AuditAction.CREATE if created else AuditAction.EDIT, obj=endpoint,
              kind=endpoint.kind, base_url=endpoint.base_url, model=endpoint.model,
              api_key_changed=api_key is not None)
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor, endpoint: ModelEndpoint) -> None:
    audit_log(actor=actor, action=AuditAction.ARCHIVE, obj=endpoint)
    endpoint.delete()


def endpoint_from_environment_ensure() -> ModelEndpoint | None:
    """CHAT_MODEL_BASE_URL (+ CHAT_MODEL_NAME, CHAT_MODEL_API_KEY, CHAT_MODEL_CONTEXT_WINDOW) presets
    an OpenAI-compatible endpoint that the default assistant uses unless it has one already."""
    base_url = os.environ.get("CHAT_MODEL_BASE_URL", "").strip()
    if not base_url:
        return None
    name = os.environ.get("CHAT_MODEL_ENDPOINT_NAME", "Environment model")
    with transaction.atomic():
        endpoint, _ = ModelEndpoint.objects.select_for_update().get_or_create(
            name=name, defaults={"kind": EndpointKind.OPENAI, "base_url": base_url, "from_environment": True})
        if endpoint.from_environment:
            endpoint.base_url = base_url
            endpoint.model = os.environ.get("CHAT_MODEL_NAME", endpoint.model or "deepseek-chat")
            key = os.environ.get("CHAT_MODEL_API_KEY")
            if key is not None:
                endpoint.api_key_encrypted = encrypt(key)
            window = os.environ.get("CHAT_MODEL_CONTEXT_WINDOW")
            if window and window.isdecimal():
                endpoint.context_window = int(window)
            endpoint.save()
        Assistant.objects.filter(is_default=True, endpoint__isnull=True).update(endpoint=endpoint)
    return endpoint
