"""Sentences, languages and lexical overlap for Chinese and English (extractive answers and
citation verification share them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.tokenize import is_cjk, normalize, tokenize

_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Sentence ends: Chinese full stops (the quote or bracket that closes them stays with them),
# English ends followed by space, and line breaks.
_SENTENCE_END = re.compile(r"[。！？!?；;]+[”’」』）)\]]*|(?<![A-Z])(?<!\b[A-Za-z])\.(?=\s)|\n+")
MARKER = re.compile(r"\s?\[(\d{1,3})\]")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def sentences(text: str) -> list[Sentence]:
    out: list[Sentence] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        _add(out, text, start, end)
        start = end
    _add(out, text, start, len(text))
    return out


def _add(out: list[Sentence], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped or not re.search(r"\w", stripped):
        return
    lead = len(piece) - len(piece.lstrip())
    out.append(Sentence(stripped, start + lead, start + lead + len(stripped)))


def question_language(text: str) -> str:
    return "zh" if is_cjk(text) else "en"


def lexical_units(text: str) -> set[str]:
    """What overlap is counted in: BM25 terms (jieba words, stemmed English words) and, for
    Chinese, character bigrams too, so that a paraphrase cut differently by jieba still matches."""
    units = set(tokenize(text))
    chars = "".join(_CJK_CHAR.findall(normalize(text)))
    units.update(chars[i : i + 2] for i in range(len(chars) - 1))
    return units


def support(sentence: str, source: str, *, source_units: set[str] | None = None) -> float:
    """Share of the sentence's lexical units found in the source (0 when the sentence has none)."""
    units = lexical_units(MARKER.sub("", sentence))
    if not units:
        return 0.0
    source_units = source_units if source_units is not None else lexical_units(source)
    return len(units & source_units) / len(units)


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()
