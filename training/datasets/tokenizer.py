"""The base model's tokenizer for token lengths and the chat-template preview."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _


class TokenizerUnavailable(Exception):
    """Shown to the user as is."""


def tokenizer_path() -> Path | None:
    configured = getattr(settings, "TRAINING_TOKENIZER_PATH", None)
    if configured:
        return Path(configured)
    try:
        from training.finetune.demo_model import demo_model_path
    except ImportError:
        return None
    path = demo_model_path()
    return path if (path / "tokenizer_config.json").exists() else None


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def load_tokenizer(path: str | Path | None = None):
    path = Path(path) if path else tokenizer_path()
    if path is None:
        raise TokenizerUnavailable(
            _("No tokenizer to measure tokens with: set TRAINING_TOKENIZER_PATH to the base model's directory, or run manage.py create_demo_model.")
        )
    config = path / "tokenizer_config.json"
    if not config.exists():
        raise TokenizerUnavailable(_("No tokenizer in %(path)s (tokenizer_config.json is missing).") % {"path": path})
    try:
        return _load(str(path), config.stat().st_mtime)
    except Exception as exc:  # a broken directory: say which and why
        raise TokenizerUnavailable(_("The tokenizer in %(path)s cannot be loaded: %(error)s") % {"path": path, "error": exc}) from exc


def count_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def conversation_tokens(tokenizer, messages: list[dict]) -> int:
    """Tokens of the conversation as training sees it: rendered with the chat template when there is one."""
    if getattr(tokenizer, "chat_template", None):
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    return sum(count_tokens(tokenizer, m["content"]) for m in messages)
