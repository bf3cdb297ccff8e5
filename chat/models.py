"""Assistants, model endpoints, conversations, messages, citations and feedback.

An assistant never widens what a user may read: the pipeline always searches as the asking user
(`retrieval.search.search(user=asking user, ...)`), the assistant only narrows it (its knowledge
bases, its thresholds). A citation pins the exact chunk, version and character span it cites,
so that it keeps opening the text that was cited after the document moves on.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EndpointKind(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible chat completions")
    FINETUNED = "finetuned", _("Active fine-tuned model (local transformers)")
    EXTRACTIVE = "extractive", _("Extractive (no model)")


class ModelEndpoint(models.Model):
    """A model server the chat (and training) may call. The API key is encrypted at rest."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=EndpointKind.choices, default=EndpointKind.OPENAI)
    base_url = models.CharField(_("base URL"), max_length=500, blank=True)
    model = models.CharField(_("model name"), max_length=200, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    # A local tokenizer directory of the served model, to count prompt tokens exactly (else estimated).
    tokenizer_path = models.CharField(_("tokenizer directory"), max_length=500, blank=True)
    context_window = models.PositiveIntegerField(_("context window (tokens)"), default=8192)
    max_tokens = models.PositiveIntegerField(_("answer length limit (tokens)"), default=1024)
    temperature = models.FloatField(_("temperature"), default=0.0)
    connect_timeout_s = models.FloatField(_("connect timeout (s)"), default=5.0)
    read_timeout_s = models.FloatField(_("timeout between streamed tokens (s)"), default=60.0)
    enabled = models.BooleanField(_("enabled"), default=True)
    from_environment = models.BooleanField(default=False, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("model endpoint")

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


def default_assistant_settings() -> dict:
    return {}


BUILT_IN_ASSISTANT_NAME = "Company assistant"


class Assistant(models.Model):
    """Name, system prompt, knowledge bases, retrieval settings and a model backend.

    No knowledge bases listed: it searches every knowledge base the asking user may read.
    No departments listed: every signed-in user may use it; else members of those departments.
    """

    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    system_prompt = models.TextField(_("system prompt"), blank=True)
    knowledge_bases = models.ManyToManyField(
        "knowledge.KnowledgeBase", blank=True, related_name="assistants", verbose_name=_("knowledge bases")
    )
    departments = models.ManyToManyField(
        "accounts.Department", blank=True, related_name="assistants", verbose_name=_("available to departments")
    )
    endpoint = models.ForeignKey(
        ModelEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="assistants",
        verbose_name=_("model endpoint"),
    )
    # k, mode (the no-knowledge cut is search()'s), max_sources, verification thresholds.
    retrieval_settings = models.JSONField(_("retrieval settings"), default=default_assistant_settings, blank=True)
    is_default = models.BooleanField(_("default assistant"), default=False)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("assistant")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_assistant")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The name shown on pages: the built-in default assistant's English name (stored by migration
        chat.0002, and its /v1 model id) reads in the reader's language until an admin renames it."""
        if self.is_default and self.name == BUILT_IN_ASSISTANT_NAME:
            return str(_("Company assistant"))
        return self.name


class Channel(models.TextChoices):
    WEB = "web", _("Chat page")
    API = "api", _("API")


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    assistant = models.ForeignKey(Assistant, null=True, on_delete=models.SET_NULL, related_name="conversations")
    title = models.CharField(_("title"), max_length=200, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["user", "channel", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"#{self.pk}"


class Role(models.TextChoices):
    USER = "user", _("user")
    ASSISTANT = "assistant", _("assistant")


class MessageStatus(models.TextChoices):
    STREAMING = "streaming", _("streaming")
    DONE = "done", _("done")
    STOPPED = "stopped", _("stopped")
    FAILED = "failed", _("failed")
    NO_KNOWLEDGE = "no_knowledge", _("no relevant knowledge")


class Message(models.Model):
    """One turn. An assistant message's `content` is the answer only (never the reasoning)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=12, choices=Role.choices)
    content = models.TextField(blank=True)
    # DeepSeek-R1 reasoning, shown collapsed; never the answer, never sent back, never cited.
    reasoning = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.DONE)
    error_message = models.TextField(blank=True)
    # Assistant turns: the question answered, the rewritten search query, which backend answered.
    question = models.TextField(blank=True)
    condensed_query = models.TextField(blank=True)
    backend = models.CharField(max_length=200, blank=True)
    extractive = models.BooleanField(default=False)
    # [{"chunk_id", "version_id", "document_id", "rank", "score", "retrievers": {...}}]
    retrieved = models.JSONField(default=list, blank=True)
    usage = models.JSONField(default=dict, blank=True)  # prompt_tokens, completion_tokens
    timings = models.JSONField(default=dict, blank=True)  # condense/retrieve/rerank/prompt/first_token/total ms
    verification = models.JSONField(default=dict, blank=True)  # what the citation check changed
    regenerated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["conversation", "id"]), models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    @property
    def total_tokens(self) -> int:
        return int(self.usage.get("prompt_tokens", 0)) + int(self.usage.get("completion_tokens", 0))


class Citation(models.Model):
    """Marker [n] of an answer, pinned to what it cites. Ids are kept as plain values too, so the
    row keeps its meaning even if a chunk row is ever removed."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="citations")
    marker = models.PositiveIntegerField()
    chunk = models.ForeignKey("knowledge.Chunk", null=True, on_delete=models.SET_NULL, related_name="+")
    chunk_ref = models.BigIntegerField()
    version = models.ForeignKey("knowledge.DocumentVersion", null=True, on_delete=models.SET_NULL, related_name="+")
    version_ref = models.BigIntegerField()
    document = models.ForeignKey("knowledge.Document", null=True, on_delete=models.SET_NULL, related_name="+")
    document_ref = models.BigIntegerField()
    version_number = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=300, blank=True)
    heading_path = models.JSONField(default=list, blank=True)
    char_start = models.PositiveIntegerField(default=0)
    char_end = models.PositiveIntegerField(default=0)
    text_sha256 = models.CharField(max_length=64)
    score = models.FloatField(default=0.0)
    rank = models.PositiveIntegerField(default=0)
    cited = models.BooleanField(default=False)  # a marker in the final answer points at it
    supported = models.BooleanField(default=True)  # lexical overlap of its sentences passed

    class Meta:
        ordering = ["message", "marker"]
        constraints = [models.UniqueConstraint(fields=["message", "marker"], name="one_citation_per_marker")]

    def __str__(self) -> str:
        return f"[{self.marker}] {self.title}"


class Feedback(models.Model):
    """Thumbs up/down with an optional corrected answer: what training turns into examples."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_feedback")
    rating = models.SmallIntegerField(choices=[(1, _("helpful")), (-1, _("not helpful"))])
    correction = models.TextField(_("corrected answer"), blank=True)
    question = models.TextField()
    answer = models.TextField()
    retrieved_chunk_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="one_feedback_per_user_message")]

    def __str__(self) -> str:
        return f"{self.rating:+d} on #{self.message_id}"
