"""The extractive backend: no model. The answer is the best-matching sentence(s) of the retrieved
passages, each with its citation marker, labelled extractive by the caller.

A sentence's score is the IDF-weighted share of the question's terms it contains (BM25 terms,
IDF from the live index), times its passage's retrieval score relative to the best passage, with
a little credit for terms in the neighbouring sentence (answers often sit next to the sentence
that repeats the question). Tuned on dev splits only (see README).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from retrieval.tokenize import tokenize

from .text import Sentence, sentences

DEFAULTS = {"passages": 3, "score_power": 2.0, "neighbour_weight": 0.25, "max_sentences": 1, "second_ratio": 0.9,
            # Narrow the chosen sentence to its best window of clauses (0: keep the whole sentence):
            # at most this many clauses, scored by the question terms they hold, minus
            # `length_penalty` times their share of the sentence, plus `type_bonus` when the
            # question asks for a number or date and the window holds a digit.
            "clauses": 0, "length_penalty": 0.3, "type_bonus": 0.2}

# Clause boundaries inside a sentence: Chinese and English commas, semicolons, colons.
_CLAUSE_END = re.compile(r"[，、；：,;:](?=\S|\s)")
# Questions that ask for a number, a date or an amount.
_NUMERIC_QUESTION = re.compile(
    r"多少|几|哪一年|哪年|何时|什么时候|时间|日期|年份|多久|多大|多长|多高|多远|第几|\bhow (many|much|long|old|far|large|big|tall)\b|"
    r"\bwhen\b|\bwhat (year|date|day|month|century|time|percentage)\b|\bin which year\b",
    re.IGNORECASE)
_DIGIT = re.compile(r"[0-9０-９一二三四五六七八九十百千万亿]")


@dataclass
class Passage:
    marker: int
    text: str
    score: float


@dataclass
class Pick:
    marker: int
    sentence: Sentence
    score: float


def term_idf(terms: list[str]) -> dict[str, float]:
    """BM25 IDF of each term over the searchable chunks (unknown terms get the highest IDF)."""
    terms = sorted(set(terms))
    if not terms:
        return {}
    with connection.cursor() as cursor:
        # One statement: the chunk count and the document frequencies.
        cursor.execute(
            "SELECT s.chunk_count, t.term, t.df FROM retrieval_bm25statistics s "
            "LEFT JOIN retrieval_bm25term t ON t.term = ANY(%s::text[]) WHERE s.id = 1", [terms])
        rows = cursor.fetchall()
    n = int(rows[0][0]) if rows and rows[0][0] else 1
    df = {term: count for _, term, count in rows if term is not None}
    return {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in terms}


def pick_sentences(question: str, passages: list[Passage], *, idf: dict[str, float] | None = None,
                   params: dict | None = None) -> list[Pick]:
    cfg = {**DEFAULTS, **(params or {})}
    q_terms = set(tokenize(question))
    if not q_terms or not passages:
        return []
    idf = idf if idf is not None else term_idf(list(q_terms))
    total = sum(idf.get(t, 1.0) for t in q_terms) or 1.0
    best_passage = max(p.score for p in passages) or 1.0
    picks: list[Pick] = []
    for passage in passages[: int(cfg["passages"])]:
        sents = sentences(passage.text)
        weights = []
        for s in sents:
            terms = set(tokenize(s.text))
            weights.append(sum(idf.get(t, 1.0) for t in q_terms & terms) / total)
        relative = max(passage.score, 0.0) / best_passage
        for i, s in enumerate(sents):
            neighbour = max(weights[i - 1] if i else 0.0, weights[i + 1] if i + 1 < len(weights) else 0.0)
            score = (weights[i] + cfg["neighbour_weight"] * neighbour) * relative ** cfg["score_power"]
            picks.append(Pick(passage.marker, s, score))
    picks.sort(key=lambda p: (-p.score, p.marker, p.sentence.start))
    if not picks or picks[0].score <= 0:
        return []
    chosen = [picks[0]]
    for p in picks[1:]:
        if len(chosen) >= int(cfg["max_sentences"]):
            break
        if p.score >= cfg["second_ratio"] * picks[0].score and p.sentence.text != chosen[0].sentence.text:
            chosen.append(p)
    if int(cfg["clauses"]) > 0:
        numeric = bool(_NUMERIC_QUESTION.search(question))
        chosen = [Pick(p.marker, narrow(p.sentence, q_terms, idf, total, cfg, numeric=numeric), p.score) for p in chosen]
    return chosen


def clauses(sentence: Sentence) -> list[Sentence]:
    """The sentence's clauses (split after commas, semicolons, colons), offsets kept."""
    out, start = [], 0
    text = sentence.text
    for match in _CLAUSE_END.finditer(text):
        if text[start:match.end()].strip():
            out.append((start, match.end()))
        start = match.end()
    if text[start:].strip():
        out.append((start, len(text)))
    result = []
    for a, b in out:
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        piece = piece.strip()
        result.append(Sentence(piece, sentence.start + a + lead, sentence.start + a + lead + len(piece)))
    return result


def narrow(sentence: Sentence, q_terms: set[str], idf: dict[str, float], total: float, cfg: dict, *,
           numeric: bool) -> Sentence:
    """The best window of at most cfg["clauses"] clauses of the sentence (a shorter, precise answer)."""
    parts = clauses(sentence)
    if len(parts) <= 1:
        return sentence
    weights = [sum(idf.get(t, 1.0) for t in q_terms & set(tokenize(p.text))) / total for p in parts]
    size = len(sentence.text) or 1
    if cfg.get("around") is not None:
        left, right = cfg["around"]
        k = max(range(len(parts)), key=lambda i: weights[i])
        i, j = max(0, k - left), min(len(parts) - 1, k + right)
        return Sentence(sentence.text[parts[i].start - sentence.start : parts[j].end - sentence.start], parts[i].start, parts[j].end)
    best, best_score = sentence, None
    for i in range(len(parts)):
        for j in range(i, min(len(parts), i + int(cfg["clauses"]))):
            text = sentence.text[parts[i].start - sentence.start : parts[j].end - sentence.start]
            score = sum(weights[i : j + 1]) - cfg["length_penalty"] * len(text) / size
            if numeric and _DIGIT.search(text):
                score += cfg["type_bonus"]
            if best_score is None or score > best_score:
                best, best_score = Sentence(text, parts[i].start, parts[j].end), score
    return best


def compose(picks: list[Pick]) -> str:
    """Sentences in passage order, each followed by its marker."""
    parts = []
    for p in sorted(picks, key=lambda p: (p.marker, p.sentence.start)):
        text = p.sentence.text
        parts.append(f"{text}[{p.marker}]" if _is_cjk_text(text) else f"{text} [{p.marker}]")
    joiner = "" if parts and all(_is_cjk_text(p) for p in parts) else " "
    return joiner.join(parts)


def _is_cjk_text(text: str) -> bool:
    from retrieval.tokenize import is_cjk

    return is_cjk(text)


class ExtractiveBackend:
    """Not a model: `answer()` takes the numbered passages instead of a prompt."""

    name = "extractive"
    extractive = True
    context_window = 1 << 30

    def __init__(self, params: dict | None = None) -> None:
        self.params = params or {}

    def count_tokens(self, text: str) -> int:
        return 0

    def answer(self, question: str, passages: list[Passage]) -> str:
        return compose(pick_sentences(question, passages, params=self.params))

    def stream_answer(self, question: str, passages: list[Passage]) -> Iterator[str]:
        text = self.answer(question, passages)
        step = 16
        for i in range(0, len(text), step):
            yield text[i : i + step]
