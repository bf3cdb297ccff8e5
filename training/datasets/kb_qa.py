"""Question-answer pairs from knowledge text: by a model endpoint when one is configured, else
(or when the model gives nothing usable) by rules: FAQ-style Q/A blocks, then headings as questions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from llm.base import BackendError

MAX_ANSWER_CHARS = 2000
MAX_DOCUMENT_CHARS = 6000  # sent to the model per document

_CJK = re.compile(r"[\u4e00-\u9fff]")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_Q = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?\s*(?:Q|问|问题|Question)\s*\d*\s*(?:\*\*)?\s*[:：.、]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_A = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?\s*(?:A|答|回答|答案|Answer)\s*\d*\s*(?:\*\*)?\s*[:：.、]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    method: str  # "kb_faq", "kb_heading", "kb_model"


def _clean(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def faq_pairs(text: str) -> tuple[list[QAPair], set[int]]:
    """Q:/A: (问：/答：) blocks; returns the pairs and the line numbers they used."""
    lines = text.splitlines()
    pairs, used = [], set()
    i = 0
    while i < len(lines):
        q = _Q.match(lines[i])
        if not q:
            i += 1
            continue
        start, question, i = i, [q.group(1)], i + 1
        while i < len(lines) and not _A.match(lines[i]) and not _Q.match(lines[i]) and not _HEADING.match(lines[i]):
            question.append(lines[i])
            i += 1
        if i >= len(lines) or not _A.match(lines[i]):
            continue
        answer, i = [_A.match(lines[i]).group(1)], i + 1
        while i < len(lines) and not _Q.match(lines[i]) and not _HEADING.match(lines[i]):
            answer.append(lines[i])
            i += 1
        question_text, answer_text = _clean("\n".join(question)), _clean("\n".join(answer))
        if question_text and answer_text:
            pairs.append(QAPair(question_text, answer_text[:MAX_ANSWER_CHARS], "kb_faq"))
            used.update(range(start, i))
    return pairs, used


def heading_question(heading: str, title: str) -> str:
    heading = heading.strip().strip("*").strip()
    if heading.endswith(("?", "？")):
        return heading
    chinese = bool(_CJK.search(heading))
    if heading == title.strip():
        return f"{heading}的主要内容是什么？" if chinese else f"What does “{heading}” say?"
    if chinese:
        return f"{title}中关于“{heading}”的规定是什么？" if title and title != heading else f"关于“{heading}”的规定是什么？"
    return f"What does “{title}” say about {heading}?" if title and title != heading else f"What is {heading}?"


def heading_pairs(text: str, title: str, skip_lines: set[int] = frozenset()) -> list[QAPair]:
    lines = text.splitlines()
    sections: list[tuple[str, list[str]]] = []
    for n, line in enumerate(lines):
        match = _HEADING.match(line)
        if match:
            sections.append((match.group(2), []))
        elif sections and n not in skip_lines:
            sections[-1][1].append(line)
    pairs = []
    for heading, body in sections:
        answer = _clean("\n".join(body))
        if answer:
            pairs.append(QAPair(heading_question(heading, title), answer[:MAX_ANSWER_CHARS], "kb_heading"))
    return pairs


def rule_based_pairs(text: str, title: str = "") -> list[QAPair]:
    faq, used = faq_pairs(text)
    pairs = faq + heading_pairs(text, title, used)
    if not pairs and title.strip() and _clean(text):  # no structure: the document answers its title
        pairs = [QAPair(heading_question(title, title), _clean(text)[:MAX_ANSWER_CHARS], "kb_heading")]
    return pairs


SYSTEM_PROMPT = (
    "You write question-answer pairs for fine-tuning a company assistant. Use only facts stated in the "
    "document. Answer in the document's language. Reply with JSON only: a list of objects with the keys "
    '"question" and "answer".'
)


def parse_model_pairs(text: str) -> list[QAPair]:
    """The model's reply as pairs: a JSON list (possibly inside a ``` block) or JSON lines."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    items = []
    try:
        loaded = json.loads(text)
        items = loaded if isinstance(loaded, list) else [loaded]
    except json.JSONDecodeError:
        for line in text.splitlines():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    pairs = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("question"), str) and isinstance(item.get("answer"), str):
            q, a = item["question"].strip(), item["answer"].strip()
            if q and a:
                pairs.append(QAPair(q, a[:MAX_ANSWER_CHARS], "kb_model"))
    return pairs


def model_pairs(backend, text: str, title: str, *, max_pairs: int = 8) -> list[QAPair]:
    """Pairs from the model; [] when it fails or answers nothing usable (the caller falls back)."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Title: {title}\nAt most {max_pairs} pairs.\n\n{text[:MAX_DOCUMENT_CHARS]}"},
    ]
    try:
        completion = backend.complete(messages, max_tokens=1024, temperature=0.0)
    except BackendError:
        return []
    return parse_model_pairs(completion.text)[:max_pairs]


def document_pairs(text: str, title: str, backend=None) -> tuple[list[QAPair], str]:
    """(pairs, how): how is "model", "rules" or "rules_fallback" (the model gave nothing usable)."""
    if backend is not None:
        pairs = model_pairs(backend, text, title)
        if pairs:
            return pairs, "model"
        return rule_based_pairs(text, title), "rules_fallback"
    return rule_based_pairs(text, title), "rules"
