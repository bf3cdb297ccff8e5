"""Training rows from chat feedback.

Input: one dict per feedback (the chat's Feedback model is mapped to this shape at wiring time):

    {
      "id": 17,                                   # the feedback (or message) id, kept in meta
      "question": "年假有几天？",
      "context": [                                # the chunks the answer was given from, in order
        {"id": 301, "text": "员工入职满一年后…", "version_id": 12, "knowledge_base_id": 3},
      ],
      "answer": "三天。",                          # what the model answered
      "correction": "五天。",                      # the user's corrected answer, "" or None
      "thumbs": "down",                           # "up", "down" or None
      "knowledge_base_ids": [3],                  # optional: every knowledge base the answer drew on
    }                                             # (the context's, and earlier turns' it saw)

Rules:
- a correction becomes an SFT example: (question + retrieved context) → corrected answer; when the
  model's answer differs, the same row also carries it as `rejected` (a preference pair), so SFT
  reads the correction once and DPO reads the pair;
- thumbs-down without a correction becomes a preference pair when a better answer to the same
  question exists (a correction or a thumbs-up answer); otherwise it is listed as skipped;
- thumbs-up answers become SFT examples only with include_thumbs_up.
Each row keeps the chunk ids and document version ids it was grounded on. The knowledge bases of
every record a row takes text from are collected in `knowledge_base_ids`: its own, and those of the
record whose better answer a thumbs-down row borrowed (that answer may quote their text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cleaning import normalize

RAG_SYSTEM_PROMPT = "你是公司知识库助手。只根据参考资料回答；资料中没有答案时请说明无法回答。"


def rag_user_message(question: str, context: list[dict]) -> str:
    """The user turn as the chat's RAG prompt shows it: numbered context chunks, then the question.
    Keep in step with the chat's prompt builder so training matches serving."""
    if not context:
        return question
    chunks = "\n\n".join(f"[{n}] {c.get('text', '').strip()}" for n, c in enumerate(context, 1))
    return f"参考资料：\n{chunks}\n\n问题：{question}"


@dataclass
class FeedbackConversion:
    sft: list[dict] = field(default_factory=list)
    preference: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    knowledge_base_ids: set[int] = field(default_factory=set)

    @property
    def payloads(self) -> list[dict]:
        return self.sft + self.preference


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _thumbs(value) -> str | None:
    if value in ("up", 1, True, "+1"):
        return "up"
    if value in ("down", -1, False, "-1"):
        return "down"
    return None


def _context(record: dict) -> list[dict]:
    return [c for c in record.get("context") or [] if isinstance(c, dict)]


def _version_ids(record: dict) -> set[int]:
    return {int(c["version_id"]) for c in _context(record) if c.get("version_id") is not None}


def _knowledge_base_ids(record: dict) -> set[int]:
    """Every knowledge base the record's answer drew on: its context's and those it lists."""
    ids = {int(c["knowledge_base_id"]) for c in _context(record) if c.get("knowledge_base_id") is not None}
    listed = record.get("knowledge_base_ids")
    ids.update(int(i) for i in (listed if isinstance(listed, (list, tuple, set)) else []) if i is not None)
    return ids


def _row(record: dict, chosen: str, *, rejected: str = "", method: str, chosen_from: dict | None = None) -> dict:
    context = _context(record)
    meta = {"feedback_id": record.get("id"), "chunk_ids": [c.get("id") for c in context]}
    version_ids = _version_ids(record)
    if chosen_from is not None and chosen_from is not record:
        # the better answer is another record's: its lineage too
        meta["chosen_from_feedback_id"] = chosen_from.get("id")
        version_ids |= _version_ids(chosen_from)
    return {
        "messages": [
            {"role": "system", "content": RAG_SYSTEM_PROMPT},
            {"role": "user", "content": rag_user_message(_text(record.get("question")), context)},
            {"role": "assistant", "content": chosen},
        ],
        "rejected": rejected,
        "method": method,
        "source_version_ids": sorted(version_ids),
        "meta": meta,
    }


def convert_feedback(records: list[dict], *, include_thumbs_up: bool = False, preference_from_corrections: bool = True) -> FeedbackConversion:
    out = FeedbackConversion()
    # normalized question -> (a better answer, the record it comes from): a correction first, else thumbs-up
    better: dict[str, tuple[str, dict]] = {}
    for record in records:
        key = normalize(_text(record.get("question")))
        correction, answer = _text(record.get("correction")), _text(record.get("answer"))
        if correction:
            better[key] = (correction, record)
        elif _thumbs(record.get("thumbs")) == "up" and answer:
            better.setdefault(key, (answer, record))
    for record in records:
        question, answer = _text(record.get("question")), _text(record.get("answer"))
        correction, thumbs = _text(record.get("correction")), _thumbs(record.get("thumbs"))
        if not question:
            out.skipped.append({"id": record.get("id"), "reason": "no_question"})
            continue
        used: list[dict] = []  # the records whose text the row holds
        if correction:
            if preference_from_corrections and answer and normalize(answer) != normalize(correction):
                out.preference.append(_row(record, correction, rejected=answer, method="feedback_correction"))
            else:
                out.sft.append(_row(record, correction, method="feedback_correction"))
            used = [record]
        elif thumbs == "down":
            chosen, source = better.get(normalize(question), ("", None))
            if chosen and answer and normalize(chosen) != normalize(answer):
                out.preference.append(
                    _row(record, chosen, rejected=answer, method="feedback_preference", chosen_from=source))
                used = [record, source]
            else:
                out.skipped.append({"id": record.get("id"), "reason": "no_better_answer"})
        elif thumbs == "up" and include_thumbs_up and answer:
            out.sft.append(_row(record, answer, method="feedback_thumbs_up"))
            used = [record]
        else:
            out.skipped.append({"id": record.get("id"), "reason": "no_signal"})
        for taken in used:
            out.knowledge_base_ids.update(_knowledge_base_ids(taken))
    return out
