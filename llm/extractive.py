"""The extractive backend: no model. The answer is the best-matching sentence(s) of the retrieved
passages, each with its citation marker, labelled extractive by the caller.

A sentence's score is the weighted share of the question's terms it contains (BM25 terms, IDF from
the live index, times a local IDF over the candidate sentences so that the passage's subject,
which most sentences repeat, does not decide), a bonus when the question asks for a number or a
date and the sentence has one, times its passage's retrieval score relative to the best passage.
Optional: credit for the neighbouring sentence, Chinese character bigrams, narrowing to a window
of clauses. Tuned on dev splits only (see README "Measured figures → Chat").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from retrieval.tokenize import tokenize

from .text import Sentence, sentences
from .tokens import estimate_tokens

# score_power: how much a passage's retrieval score, relative to the best passage's, weighs its
# sentences; 4 on both dev splits (CMRC, SQuAD) since the ninth session's fusion, whose scores lie
# closer together than the min-max fusion's (2 before).
DEFAULTS = {"passages": 3, "score_power": 4.0, "neighbour_weight": 0.0, "max_sentences": 1, "second_ratio": 0.9,
            # Narrow the chosen sentence to its best window of clauses (0: keep the whole sentence):
            # at most this many clauses, scored by the question terms they hold, minus
            # `length_penalty` times their share of the sentence, plus `type_bonus` when the
            # question asks for a number or date and the window holds a digit.
            "clauses": 0, "length_penalty": 0.3, "type_bonus": 0.3,
            # Chinese character bigrams of the question count too, with this IDF (0: off).
            "bigrams": 0.0,
            # Weigh a unit down by how many candidate sentences hold it (0: off; the exponent).
            "local_idf": 3.0}

# Clause boundaries inside a sentence: Chinese and English commas, semicolons, colons.
_CLAUSE_END = re.compile(r"[，、；：,;:](?=\S|\s)")
# Questions that ask for a number, a date or an amount.
_NUMERIC_QUESTION = re.compile(
    r"多少|几|哪一年|哪年|何时|什么时候|时间|日期|年份|多久|多大|多长|多高|多远|第几|\bhow (many|much|long|old|far|large|big|tall)\b|"
    r"\bwhen\b|\bwhat (year|date|day|month|century|time|percentage)\b|\bin which year\b",
    re.IGNORECASE)
_QUESTION_WORDS = re.compile(r"什么|哪些|哪个|哪里|哪一|哪|多少|为什么|怎么|怎样|如何|是否|是谁|谁|几|吗|呢|何时|何")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
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


def pick_sentences(question: str, passages: list[Passage], *, idf: dict[str, float] | None = None,
                   params: dict | None = None) -> list[Pick]:
    """`idf`: each question term's weight (`retrieval.indexing.term_idf` over what the asker may
    read); without it every term weighs 1."""
    cfg = {**DEFAULTS, **(params or {})}
    q_terms = set(tokenize(question))
    if not q_terms or not passages:
        return []
    idf = dict(idf or {})
    units = set(q_terms)
    if cfg["bigrams"] > 0:
        # Chinese character bigrams of the question (not its question words): a paraphrase that
        # jieba cuts differently ("分布在" / "分布于", "舰艇") still matches.
        for bigram in _bigrams(_QUESTION_WORDS.sub(" ", question)) - q_terms:
            units.add(bigram)
            idf.setdefault(bigram, cfg["bigrams"])
    scope = passages[: int(cfg["passages"])]
    split = [(passage, sentences(passage.text)) for passage in scope]
    sentence_units = [[set(tokenize(s.text)) | _bigrams(s.text) if cfg["bigrams"] > 0 else set(tokenize(s.text))
                       for s in sents] for _, sents in split]
    weight = {u: idf.get(u, 1.0) for u in units}
    if cfg["local_idf"] > 0:
        # A unit that many of the candidate sentences hold (the passage's subject) says little about
        # which sentence answers: weigh it down by its sentence frequency among the candidates.
        count = sum(len(x) for x in sentence_units) or 1
        for u in units:
            sf = sum(1 for x in sentence_units for su in x if u in su)
            weight[u] *= math.log(1 + count / (1 + sf)) ** cfg["local_idf"]
    total = sum(weight.values()) or 1.0
    numeric = bool(_NUMERIC_QUESTION.search(question))
    best_passage = max(p.score for p in passages) or 1.0
    picks: list[Pick] = []
    for (passage, sents), sunits in zip(split, sentence_units, strict=True):
        weights = []
        for s, su in zip(sents, sunits, strict=True):
            w = sum(weight[u] for u in units & su) / total
            if numeric and cfg["type_bonus"] and _DIGIT.search(s.text):
                w += cfg["type_bonus"] * w
            weights.append(w)
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


def _bigrams(text: str) -> set[str]:
    from retrieval.tokenize import normalize

    out: set[str] = set()
    for run in _CJK_RUN.findall(normalize(text)):
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    return out


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
        return estimate_tokens(text)

    def answer(self, question: str, passages: list[Passage], *, idf: dict[str, float] | None = None) -> str:
        """`idf`: the question terms' weights, counted over what the asker may read (the caller's)."""
        return compose(pick_sentences(question, passages, idf=idf, params=self.params))

    def stream_answer(self, question: str, passages: list[Passage], *, idf: dict[str, float] | None = None) -> Iterator[str]:
        text = self.answer(question, passages, idf=idf)
        step = 16
        for i in range(0, len(text), step):
            yield text[i : i + step]
