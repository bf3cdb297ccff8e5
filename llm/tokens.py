"""Counting tokens in a model's own tokenizer when we have it, else a conservative estimate."""

from __future__ import annotations

import functools
import re
import threading

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_\u3400-\u9fff\uf900-\ufaff]")
_lock = threading.Lock()


def estimate_tokens(text: str) -> int:
    """An over-estimate for BPE tokenizers: one token per ideograph, ~1.3 per word or symbol."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    words = _WORD.findall(text)
    return cjk + int(sum(1 + len(w) // 6 for w in words) * 1.15) + 1


@functools.cache
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    with _lock:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)


def token_counter(tokenizer_path: str | None):
    """A function text -> token count: the tokenizer at that directory, or the estimate."""
    if tokenizer_path:
        try:
            tokenizer = _tokenizer(tokenizer_path)
        except Exception:  # a wrong directory falls back to the estimate, never breaks the chat
            return estimate_tokens
        return lambda text: len(tokenizer.encode(text or "", add_special_tokens=False))
    return estimate_tokens
