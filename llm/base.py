"""The one interface every model backend implements, used by chat (answers, condensing) and by
training (QA generation, paraphrase, teacher models, RAG evaluation)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol


class BackendError(Exception):
    """A backend could not answer: the message is shown to the user as is (translated by the caller)."""


@dataclass(frozen=True)
class Delta:
    """A piece of streamed output: answer text, or reasoning (DeepSeek-R1 `<think>`, `reasoning_content`)."""

    kind: Literal["answer", "reasoning"]
    text: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Completion:
    text: str
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"


class ChatBackend(Protocol):
    """messages are OpenAI-style dicts: {"role": "system"|"user"|"assistant", "content": str}."""

    name: str
    context_window: int  # in the model's own tokens

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop_event: threading.Event | None = None,
    ) -> Iterator[Delta]:
        """Yields deltas until done, or until stop_event is set (then returns quietly).
        The last usage is available afterwards as `self.last_usage` (a Usage)."""
        ...

    def complete(self, messages: list[dict], *, max_tokens: int = 512, temperature: float = 0.0) -> Completion: ...


@dataclass(frozen=True)
class ActiveModel:
    """The fine-tuned model version the chat's local backend should serve."""

    version_id: int
    base_model_path: str
    adapter_path: str | None
    chat_template: str | None
    chat_template_sha256: str | None = None


_active_model_resolver: Callable[[], ActiveModel | None] | None = None


def set_active_model_resolver(resolver: Callable[[], ActiveModel | None]) -> None:
    """Training registers this in its AppConfig.ready(): returns the active model version or None."""
    global _active_model_resolver
    _active_model_resolver = resolver


def active_model() -> ActiveModel | None:
    return _active_model_resolver() if _active_model_resolver else None
