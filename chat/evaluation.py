"""Answer metrics for evaluate_chat: normalized containment, token F1 (characters for Chinese)."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

from llm.text import strip_markers

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》〈〉【】「」『』…—·～﹏")


def normalize(text: str) -> str:
    """NFKC (width), lowercase, Traditional → Simplified, no punctuation or spaces."""
    from retrieval.tokenize import normalize as base

    text = base(strip_markers(text or ""))
    return "".join(c for c in text if c not in _PUNCT and not unicodedata.category(c).startswith(("P", "Z")) and not c.isspace())


def tokens(text: str) -> list[str]:
    """Characters for Chinese, SQuAD-normalized words (no articles) otherwise."""
    from retrieval.tokenize import normalize as base

    text = base(strip_markers(text or ""))
    out: list[str] = []
    for piece in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", text):
        if _CJK.match(piece):
            out.append(piece)
        elif piece not in ("a", "an", "the"):
            out.append(piece)
    return out


def contains(answer: str, golds: list[str]) -> bool:
    normalized = normalize(answer)
    return any(normalize(g) and normalize(g) in normalized for g in golds)


def f1(answer: str, golds: list[str]) -> float:
    predicted = tokens(answer)
    best = 0.0
    for gold in golds:
        g = tokens(gold)
        common = Counter(predicted) & Counter(g)
        same = sum(common.values())
        if not same:
            continue
        precision, recall = same / len(predicted), same / len(g)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
