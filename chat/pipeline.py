"""The answer pipeline: the one way a question becomes an answer (chat page, /v1, evaluate_chat).

Public entry point::

    answer_stream(*, user, assistant, question, history=None, conversation=None,
                  stop_event=None, regenerate=None, channel="web") -> Iterator[ChatEvent]

- `user`: the asking user. Retrieval always runs as this user (`search(user, ...)`), whatever the
  assistant is and whoever configured it; the assistant only narrows (its knowledge bases).
- `assistant`: an Assistant the user may use (checked again here: ErrorEvent if not).
- `question`: the new user turn (str). Empty, longer than MAX_QUESTION_CHARS or holding what the
  database cannot store (a NUL, a lone surrogate) → ErrorEvent, nothing stored.
- `history`: optional OpenAI-style [{"role": "user"|"assistant", "content": str}] of earlier
  turns (what /v1 receives). When None, the history is read from `conversation`.
- `conversation`: a Conversation of this user to append to; None creates one (`channel` says
  whether it shows on the chat page, "web", or is an API conversation, "api").
- `stop_event`: a threading.Event; when set, generation stops, the partial answer is stored with
  status "stopped" and a DoneEvent(status="stopped") is the last event. Closing the generator
  (a client that went away) does the same.
- `regenerate`: an earlier assistant Message of this user: answer its question again (a new
  assistant message; no new user message).
- `query_vector`: the question's embedding in the active space, for callers that embed many
  questions in one batch (evaluate_chat); used only when the question is searched unchanged.

Events, in order (each has `.type` and `.to_dict()` for SSE/JSON):

1. StartEvent      type="start"     conversation_id, message_id (the assistant message), user_message_id
2. SourcesEvent    type="sources"   sources: [{"n", "chunk_id", "document_id", "version_id",
                                     "version_number", "title", "heading_path", "text", "score", "url"}]
                                     (only chunks the user may read; [] when there is no knowledge),
                                     top_score (best search score before the threshold, or None)
3. ReasoningDelta  type="reasoning" text  (DeepSeek-R1 reasoning: display only, never the answer)
   AnswerDelta     type="answer"    text  (raw streamed answer; markers may still be changed)
4. DoneEvent       type="done"      message_id, status ("done" | "stopped" | "no_knowledge"),
                                     answer (the final, verified text: replaces the streamed one),
                                     citations: [{"n", "chunk_id", "document_id", "version_id",
                                     "version_number", "title", "heading_path", "char_start",
                                     "char_end", "text_sha256", "supported", "url"}] (cited only),
                                     usage {"prompt_tokens", "completion_tokens"},
                                     timings {"condense_ms", "retrieve_ms", "rerank_ms", "prompt_ms",
                                     "first_token_ms", "generate_ms", "verify_ms", "total_ms"},
                                     verification {"removed", "flagged", "added"}, extractive, backend
   or ErrorEvent    type="error"     message (for the user, translated), retryable, message_id
                                     (None when nothing was stored, e.g. an empty question)

Exactly one of DoneEvent / ErrorEvent ends the stream. The answer's usage is charged to the user's
quota (`accounts.limits.usage_record`) once, in `finish()`, however the stream ends: the final event,
the stop button, a closed generator, a model failing after it began (a failure before anything was
generated costs nothing); callers never charge. The stored assistant Message holds the
answer text only; reasoning is kept apart (Message.reasoning) and never enters the history.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Exists, OuterRef, Value
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import limits
from knowledge.policy import version_policy
from llm.base import BackendError
from llm.extractive import Passage
from llm.registry import backend_for_endpoint
from llm.tokens import estimate_tokens
from llm.text import MARKER, question_language, sentences, support, lexical_units
from retrieval.indexing import term_idf
from retrieval.tokenize import tokenize

from .models import Channel, Citation, Conversation, Message, MessageStatus, Role

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 8000
HISTORY_MESSAGES = 12  # the most recent turns read from a conversation (thousands never load)

DEFAULT_SETTINGS: dict[str, Any] = {
    "k": 5,  # numbered sources in the prompt
    "mode": "hybrid",
    "unsupported_below": 0.3,  # a cited sentence whose source covers less of it is flagged
    "add_marker_above": 0.8,  # an unmarked sentence one source covers this much gets its marker
    "add_marker_margin": 0.2,  # ... and no other source comes within this margin
    "max_tokens": 1024,
    "extractive": {},
}


# --- events ---------------------------------------------------------------------------------------


@dataclass
class ChatEvent:
    type: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"type": self.type, **asdict(self)}


@dataclass
class StartEvent(ChatEvent):
    type: ClassVar[str] = "start"
    conversation_id: int
    message_id: int
    user_message_id: int | None


@dataclass
class SourcesEvent(ChatEvent):
    type: ClassVar[str] = "sources"
    sources: list[dict]
    top_score: float | None = None  # the best search score before the no-knowledge threshold


@dataclass
class AnswerDelta(ChatEvent):
    type: ClassVar[str] = "answer"
    text: str


@dataclass
class ReasoningDelta(ChatEvent):
    type: ClassVar[str] = "reasoning"
    text: str


@dataclass
class DoneEvent(ChatEvent):
    type: ClassVar[str] = "done"
    message_id: int
    status: str
    answer: str
    citations: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    extractive: bool = False
    backend: str = ""


@dataclass
class ErrorEvent(ChatEvent):
    type: ClassVar[str] = "error"
    message: str
    retryable: bool = False
    message_id: int | None = None


# --- helpers --------------------------------------------------------------------------------------


def assistant_settings(assistant) -> dict:
    cfg = {**DEFAULT_SETTINGS, **(assistant.retrieval_settings or {})}
    cfg["k"] = max(1, min(int(cfg["k"]), 20))
    return cfg


def no_knowledge_text(language: str) -> str:
    with translation.override("zh-hans" if language == "zh" else "en"):
        return _("I have no knowledge about that in the knowledge bases you can read.")


_ANAPHORA = re.compile(
    r"(它|他们|她们|他|她|这个|那个|这些|那些|其|该|此|上述|呢[？?]?$)|\b(it|its|they|them|their|this|that|these|those|he|she|his|her)\b",
    re.IGNORECASE,
)


def condense_rule_based(question: str, history: list[dict]) -> str:
    """Without a model: a follow-up that refers back (a pronoun, or very short) is searched
    together with the previous user question."""
    previous = next((m["content"] for m in reversed(history) if m.get("role") == "user"), "")
    if not previous:
        return question
    short = len(question) <= 8 if question_language(question) == "zh" else len(question.split()) <= 3
    if short or _ANAPHORA.search(question):
        return f"{previous} {question}"
    return question


CONDENSE_INSTRUCTION = (
    "Rewrite the last user question as one standalone question that can be understood without the "
    "conversation. Keep its language. Answer with the question only."
)


def condense_with_model(backend, question: str, history: list[dict]) -> str:
    turns = "\n".join(f"{m['role']}: {m['content'][:1000]}" for m in history[-6:])
    completion = backend.complete(
        [{"role": "system", "content": CONDENSE_INSTRUCTION},
         {"role": "user", "content": f"{turns}\nuser: {question}"}],
        max_tokens=128,
    )
    text = (completion.text or "").strip().splitlines()
    return text[0][:1000] if text and text[0].strip() else question


SYSTEM_INSTRUCTIONS = {
    "en": (
        "Answer only from the numbered sources below. Cite the sources you use as [n] right after the "
        "sentence they support. If the sources do not answer the question, say that you do not know. "
        "Answer in English."
    ),
    "zh": (
        "只根据下面编号的资料回答。在所依据的句子后用 [n] 标注引用的资料编号。"
        "如果资料不能回答问题，请直接说明不知道。用简体中文回答。"
    ),
}


def build_prompt(*, assistant, question: str, sources: list[dict], history: list[dict], backend,
                 max_tokens: int) -> tuple[list[dict], dict]:
    """Messages for the model, fitted to its context window counted in its own tokens: every
    source that fits (best first, the last one cut), then the most recent history that fits."""
    language = question_language(question)
    count = backend.count_tokens
    system = (assistant.system_prompt.strip() + "\n\n" if assistant.system_prompt.strip() else "") + SYSTEM_INSTRUCTIONS[language]
    budget = int(backend.context_window) - int(max_tokens) - count(system) - count(question) - 16
    blocks, used_sources = [], 0
    for source in sources:
        head = f"[{source['n']}] {source['title']}" + (f" › {' › '.join(source['heading_path'])}" if source["heading_path"] else "")
        block = f"{head}\n{source['text']}"
        cost = count(block) + 4
        if cost > budget:
            if budget > count(head) + 32:
                # Cut the text to what fits (by characters, rechecked in tokens).
                text = source["text"]
                while text and count(f"{head}\n{text}") + 4 > budget:
                    text = text[: int(len(text) * 0.8)]
                if text:
                    blocks.append(f"{head}\n{text}")
                    used_sources += 1
            break
        blocks.append(block)
        used_sources += 1
        budget -= cost
    kept_history: list[dict] = []
    for turn in reversed(history):
        cost = count(turn["content"]) + 4
        if cost > budget:
            break
        kept_history.insert(0, {"role": turn["role"], "content": turn["content"]})
        budget -= cost
    sources_text = "\n\n".join(blocks)
    messages = [{"role": "system", "content": f"{system}\n\n{sources_text}"}, *kept_history,
                {"role": "user", "content": question}]
    return messages, {"sources_in_prompt": used_sources, "history_in_prompt": len(kept_history)}


def source_url(message_id: int, n: int) -> str:
    return reverse("chat:citation", args=[message_id, n])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- verification ---------------------------------------------------------------------------------


def verify_citations(answer: str, sources: dict[int, str], cfg: dict | None = None) -> tuple[str, dict]:
    """Check markers against their sources. Returns (answer, changes) where changes lists the
    markers removed (pointing at no source), the sentences flagged (cited, but their source does
    not support them) and the markers added (an unmarked sentence one source clearly supports)."""
    cfg = {**DEFAULT_SETTINGS, **(cfg or {})}
    changes: dict[str, list] = {"removed": [], "flagged": [], "added": []}

    def drop(match: re.Match) -> str:
        n = int(match.group(1))
        if n in sources:
            return match.group(0)
        changes["removed"].append(n)
        return ""

    text = MARKER.sub(drop, answer)
    units = {n: lexical_units(t) for n, t in sources.items()}
    pieces: list[tuple[int, int, str]] = []  # insertions (position, marker)
    for sentence in _answer_sentences(text):
        cited = [int(m) for m in re.findall(r"\[(\d{1,3})\]", sentence.text)]
        body = MARKER.sub("", sentence.text).strip()
        if len(body) < 4:
            continue
        if cited:
            best = max(support(body, "", source_units=units[n]) for n in cited)
            if best < cfg["unsupported_below"]:
                changes["flagged"].append({"sentence": body[:300], "markers": cited, "support": round(best, 3)})
            continue
        scores = sorted(((support(body, "", source_units=u), n) for n, u in units.items()), reverse=True)
        if not scores:
            continue
        top, n = scores[0]
        runner = scores[1][0] if len(scores) > 1 else 0.0
        if top >= cfg["add_marker_above"] and top - runner >= cfg["add_marker_margin"]:
            pieces.append((sentence.end, n))
            changes["added"].append({"sentence": body[:300], "marker": n, "support": round(top, 3)})
    for position, n in sorted(pieces, reverse=True):
        # Before the sentence's closing punctuation? Keep it simple: right after the sentence.
        text = f"{text[:position]} [{n}]{text[position:]}"
    return text, changes


def _answer_sentences(text: str):
    """Sentences of an answer, each with its trailing markers ("… end. [1][2]")."""
    out = []
    for s in sentences(text):
        out.append(s)
    merged = []
    for s in out:
        if merged and re.fullmatch(r"(\s*\[\d{1,3}\])+", s.text):
            prev = merged.pop()
            merged.append(type(s)(text[prev.start:s.end], prev.start, s.end))
        else:
            merged.append(s)
    # markers right after a sentence end belong to that sentence
    fixed = []
    for i, s in enumerate(merged):
        end = s.end
        m = re.match(r"(\s*\[\d{1,3}\])+", text[end:])
        if m:
            end += m.end()
        fixed.append(type(s)(text[s.start:end], s.start, end))
    # drop the leading markers a sentence got from its predecessor
    result = []
    for s in fixed:
        lead = re.match(r"(\s*\[\d{1,3}\])+\s*", s.text)
        if lead and result and result[-1].end >= s.start + lead.end() - 1:
            s = type(s)(s.text[lead.end():], s.start + lead.end(), s.end)
        if s.text.strip():
            result.append(s)
    return result


def cited_markers(answer: str) -> list[int]:
    seen: list[int] = []
    for m in re.findall(r"\[(\d{1,3})\]", answer):
        if int(m) not in seen:
            seen.append(int(m))
    return seen


def locate(chunk_text: str, version_text: str) -> tuple[int, int]:
    """The chunk's character span in its version's text (whitespace-insensitive fallback)."""
    idx = version_text.find(chunk_text)
    if idx >= 0:
        return idx, idx + len(chunk_text)
    probe = chunk_text.strip()[:40]
    idx = version_text.find(probe) if probe else -1
    if idx >= 0:
        return idx, min(len(version_text), idx + len(chunk_text))
    # Collapse whitespace on both sides and map back.
    positions = [i for i, c in enumerate(version_text) if not c.isspace()]
    squeezed = "".join(version_text[i] for i in positions)
    target = "".join(chunk_text.split())
    idx = squeezed.find(target)
    if idx >= 0 and target:
        return positions[idx], positions[idx + len(target) - 1] + 1
    # Cleaning drops Markdown markup ("# ", "1. ", "|"): anchor on the first and the last short
    # probe of the chunk that the version contains, in order.
    width, step = 8, 4
    start = end = None
    for offset in range(0, max(1, len(target) - width + 1), step):
        found = squeezed.find(target[offset:offset + width])
        if found >= 0:
            start = found
            break
    if start is None:
        return 0, 0
    for offset in range(max(0, len(target) - width), -1, -step):
        probe = target[offset:offset + width]
        found = squeezed.find(probe, start)
        if found >= 0:
            end = found + len(probe)
            break
    if end is None or end <= start:
        return 0, 0
    return positions[start], positions[end - 1] + 1


# --- the pipeline ---------------------------------------------------------------------------------


def _history_from(conversation: Conversation, before_id: int | None, user) -> list[dict]:
    """The recent turns, in one query. An answer citing a version `user` may no longer read
    (access lost since) is left out, with its question, so the turns still alternate."""
    readable = version_policy.instances_user_has_permission_for(user, "view").values("pk")
    unreadable = Citation.objects.filter(message=OuterRef("pk"), cited=True).exclude(version_ref__in=readable)
    qs = (conversation.messages.filter(status__in=[MessageStatus.DONE, MessageStatus.STOPPED]).exclude(content="")
          .annotate(unreadable=Exists(unreadable)))
    if before_id is not None:
        qs = qs.filter(pk__lt=before_id)
    rows = list(qs.order_by("-pk").values("role", "content", "unreadable")[:HISTORY_MESSAGES])
    rows.reverse()
    turns: list[dict] = []
    for r in rows:
        if r["unreadable"]:
            if turns and turns[-1]["role"] == "user":
                turns.pop()
            continue
        turns.append({"role": r["role"],
                      "content": MARKER.sub("", r["content"]) if r["role"] == "assistant" else r["content"]})
    return turns


def _clean_history(history: list[dict] | None) -> list[dict]:
    out = []
    for turn in (history or [])[-HISTORY_MESSAGES:]:
        role, content = turn.get("role"), turn.get("content")
        if role in ("user", "assistant") and isinstance(content, str) and content.strip():
            if role == "assistant":
                # Reasoning never goes back to the model.
                content = re.sub(r"<think>.*?</think>", "", content, flags=re.DOTALL).strip()
            out.append({"role": role, "content": content[:MAX_QUESTION_CHARS]})
    return out


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot store: a NUL, or a lone surrogate (it has no UTF-8)."""
    return not _UNSTORABLE.search(text)


def unstorable_text_message() -> str:
    return _("The text contains a NUL character or an unpaired surrogate, which cannot be stored: remove it.")


def validate_question(question: Any) -> str | None:
    if not isinstance(question, str) or not question.strip():
        return _("Ask a question first: the message is empty.")
    if len(question) > MAX_QUESTION_CHARS:
        return _("The question is too long (%(n)s characters; at most %(max)s).") % {
            "n": len(question), "max": MAX_QUESTION_CHARS}
    if not storable(question):
        return unstorable_text_message()
    return None


def answer_stream(*, user, assistant, question: str, history: list[dict] | None = None,
                  conversation: Conversation | None = None, stop_event: threading.Event | None = None,
                  regenerate: Message | None = None, channel: str = Channel.WEB,
                  query_vector: list[float] | None = None, charge: bool = True) -> Iterator[ChatEvent]:
    """`charge=False`: not a use of the chat by its user (a fine-tuning evaluation's questions), so
    its tokens are not charged to the user's department quota."""
    from .policy import assistant_policy

    started = time.perf_counter()
    stop_event = stop_event or threading.Event()
    if regenerate is not None:
        question = regenerate.question
        conversation = regenerate.conversation
        if conversation.user_id != user.pk:
            yield ErrorEvent(_("That message does not exist."))
            return
    problem = validate_question(question)
    if problem:
        yield ErrorEvent(problem)
        return
    question = question.strip()
    # The permission check and the assistant's knowledge bases in one query (the policy's queryset).
    allowed = None
    if assistant is not None:
        allowed = (assistant_policy.instances_user_has_permission_for(user, "use").filter(pk=assistant.pk)
                   .annotate(kb_ids=ArrayAgg("knowledge_bases", distinct=True, default=Value([])))
                   .values_list("kb_ids", flat=True).first())
    if allowed is None:
        yield ErrorEvent(_("That assistant does not exist or is not available to you."))
        return
    knowledge_bases = [pk for pk in allowed if pk is not None] or None
    if conversation is not None and conversation.user_id != user.pk:
        yield ErrorEvent(_("That conversation does not exist."))
        return
    cfg = assistant_settings(assistant)

    # Before the first byte: the turn is stored (a stream that dies later keeps it, marked stopped),
    # in as few statements as that takes; the conversation's updated_at waits for finish().
    with transaction.atomic():
        if conversation is None:
            conversation = Conversation.objects.create(user=user, assistant=assistant, title=question[:80], channel=channel)
            history_turns = _clean_history(history)  # a new conversation has no stored turns
        elif history is None:
            history_turns = _history_from(conversation, regenerate.pk if regenerate else None, user)
            if regenerate is not None and history_turns and history_turns[-1]["role"] == "user":
                history_turns = history_turns[:-1]  # the question itself comes last, below
        else:
            history_turns = _clean_history(history)
        rows = [] if regenerate is not None else [Message(conversation=conversation, role=Role.USER, content=question)]
        rows.append(Message(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING,
                            question=question, regenerated_from=regenerate))
        *stored_user, message = Message.objects.bulk_create(rows)
        user_message = stored_user[0] if stored_user else None
    yield StartEvent(conversation.pk, message.pk, user_message.pk if user_message else None)
    run = _Run(user=user, assistant=assistant, question=question, history=history_turns, message=message,
               cfg=cfg, stop_event=stop_event, started=started, query_vector=query_vector,
               knowledge_bases=knowledge_bases, charge=charge)
    yield from run.events()


class _Run:
    """One answer being produced; `finish()` is the only place that stores the outcome."""

    def __init__(self, *, user, assistant, question, history, message, cfg, stop_event, started, query_vector=None,
                 knowledge_bases=None, charge=True):
        self.query_vector = query_vector
        self.charge = charge
        self.knowledge_bases = knowledge_bases
        self.user, self.assistant, self.question, self.history = user, assistant, question, history
        self.message, self.cfg, self.stop_event, self.started = message, cfg, stop_event, started
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.timings: dict[str, float] = {}
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.sources: list[dict] = []
        self.chunks: dict[int, Any] = {}
        self.finished = False
        self.backend_name = ""
        self.extractive = False
        self.backend = None
        self.prompt: list[dict] = []  # what the model was sent

    def _ms(self, since: float) -> float:
        return round((time.perf_counter() - since) * 1000, 2)

    def events(self) -> Iterator[ChatEvent]:
        try:
            yield from self._events()
        except GeneratorExit:
            # The client went away: keep what was produced, marked stopped.
            if not self.finished:
                self.finish(MessageStatus.STOPPED)
            raise
        except BackendError as exc:
            if not self.finished:
                self.finish(MessageStatus.FAILED, error=str(exc))
            yield ErrorEvent(_("The model could not answer: %(error)s You can try again.") % {"error": exc},
                             retryable=True, message_id=self.message.pk)
        except Exception:
            logger.exception("chat pipeline failed for message %s", self.message.pk)
            if not self.finished:
                self.finish(MessageStatus.FAILED, error="internal error")
            yield ErrorEvent(_("Something went wrong while answering. You can try again."), retryable=True,
                             message_id=self.message.pk)

    def _events(self) -> Iterator[ChatEvent]:
        from retrieval.search import search

        cfg = self.cfg
        try:
            backend = backend_for_endpoint(self.assistant.endpoint, extractive_params=cfg.get("extractive") or {})
        except BackendError:
            raise
        self.extractive = bool(getattr(backend, "extractive", False))
        self.backend_name = getattr(backend, "name", "")
        self.backend = backend

        t0 = time.perf_counter()
        query = self.question
        if self.history:
            if self.extractive:
                query = condense_rule_based(self.question, self.history)
            else:
                try:
                    query = condense_with_model(backend, self.question, self.history)
                except BackendError:
                    query = condense_rule_based(self.question, self.history)
        self.timings["condense_ms"] = self._ms(t0)

        t0 = time.perf_counter()
        # Always as the asking user: the assistant narrows the knowledge bases, never widens them.
        vector = self.query_vector if query == self.question else None
        hits = search(self.user, query, knowledge_bases=self.knowledge_bases, k=cfg["k"], mode=cfg["mode"], vector=vector)
        self.timings["retrieve_ms"] = self._ms(t0)
        self.timings["rerank_ms"] = round(hits.timings.get("rerank_ms", 0.0), 2)
        # One relevance cut: search()'s calibrated no-answer cut (per language pair, README
        # "Retrieval"). When it cuts, the hits are empty and the assistant says it has no knowledge.
        top_score = hits.relevance
        readable_kb_ids = hits.readable_kb_ids  # the extractive answer weighs words over these, as BM25 did
        hits = [] if hits.no_answer else list(hits)
        self.message.condensed_query = query if query != self.question else ""
        self.message.retrieved = [
            {"n": i, "chunk_id": h.chunk.pk, "version_id": h.chunk.version_id, "document_id": h.chunk.document_id,
             "rank": h.rank, "score": round(h.score, 6),
             "retrievers": {k: {"rank": v.rank, "score": v.score} for k, v in h.retrievers.items()}}
            for i, h in enumerate(hits, 1)
        ]
        self.sources = [
            {"n": i, "chunk_id": h.chunk.pk, "document_id": h.chunk.document_id, "version_id": h.chunk.version_id,
             "version_number": h.chunk.version.number, "title": h.chunk.document.title,
             "heading_path": list(h.chunk.heading_path or []), "text": h.chunk.text, "score": round(h.score, 4),
             "url": source_url(self.message.pk, i)}
            for i, h in enumerate(hits, 1)
        ]
        self.chunks = {i: h.chunk for i, h in enumerate(hits, 1)}
        yield SourcesEvent(self.sources, top_score=top_score)

        if not hits:
            self.answer = [no_knowledge_text(question_language(self.question))]
            self.timings["first_token_ms"] = self._ms(self.started)
            yield AnswerDelta(self.answer[0])
            yield self.finish(MessageStatus.NO_KNOWLEDGE)
            return

        t0 = time.perf_counter()
        if self.extractive:
            passages = [Passage(s["n"], s["text"], s["score"]) for s in self.sources]
            idf = term_idf(tokenize(self.question), readable_kb_ids)
            pieces = backend.stream_answer(self.question, passages, idf=idf)
            self.timings["prompt_ms"] = self._ms(t0)
            stream = (("answer", p) for p in pieces)
        else:
            messages, info = build_prompt(assistant=self.assistant, question=self.question, sources=self.sources,
                                          history=self.history, backend=backend, max_tokens=cfg["max_tokens"])
            self.prompt = messages
            self.timings["prompt_ms"] = self._ms(t0)
            stream = ((d.kind, d.text) for d in backend.stream(
                messages, max_tokens=int(cfg["max_tokens"]), stop_event=self.stop_event,
                temperature=float(getattr(self.assistant.endpoint, "temperature", 0.0) or 0.0)))
        t_gen = time.perf_counter()
        for kind, text in stream:
            if self.stop_event.is_set():
                break
            if "first_token_ms" not in self.timings:
                self.timings["first_token_ms"] = self._ms(self.started)
            if kind == "reasoning":
                self.reasoning.append(text)
                yield ReasoningDelta(text)
            else:
                self.answer.append(text)
                yield AnswerDelta(text)
        self.timings["generate_ms"] = self._ms(t_gen)
        if not self.extractive:
            last = getattr(backend, "last_usage", None)
            if last is not None:
                self.usage = {"prompt_tokens": last.prompt_tokens, "completion_tokens": last.completion_tokens}
        if self.stop_event.is_set():
            yield self.finish(MessageStatus.STOPPED)
            return
        if not "".join(self.answer).strip():
            raise BackendError(_("The model returned an empty answer."))
        yield self.finish(MessageStatus.DONE)

    def _unreported_usage(self, raw: str) -> dict:
        """The usage of a model answer the backend did not report (stopped, the client went away,
        or the stream broke off after generation began): counted in the model's own tokens."""
        count = self.backend.count_tokens
        return {"prompt_tokens": self.usage["prompt_tokens"] or sum(count(m["content"]) for m in self.prompt),
                "completion_tokens": self.usage["completion_tokens"] or count("".join(self.reasoning) + raw)}

    def finish(self, status: str, *, error: str = "") -> DoneEvent:
        """Verify the citations and store the answer, its citations, usage and timings; charge the
        usage to the user's quota. Runs once per answer, however it ends (done, stopped, the client
        went away, failed), so every answer is charged exactly once, here and nowhere else."""
        self.finished = True
        t0 = time.perf_counter()
        raw = "".join(self.answer)
        answer, changes = raw, {"removed": [], "flagged": [], "added": []}
        if status != MessageStatus.NO_KNOWLEDGE and raw:
            answer, changes = verify_citations(raw, {n: c.text for n, c in self.chunks.items()}, self.cfg)
        self.timings["verify_ms"] = self._ms(t0)
        self.timings.setdefault("first_token_ms", self._ms(self.started))
        self.timings["total_ms"] = self._ms(self.started)
        if self.extractive:
            # No model, but the answer still costs quota: the question and the answer, estimated as a
            # BPE tokenizer would count them (a no-knowledge outcome charges the question only).
            self.usage = {"prompt_tokens": estimate_tokens(self.question),
                          "completion_tokens": estimate_tokens(MARKER.sub("", answer)) if status != MessageStatus.NO_KNOWLEDGE else 0}
        elif self.prompt and (raw or self.reasoning) and not all(self.usage.values()):
            self.usage = self._unreported_usage(raw)
        # A failure before anything was generated costs nothing; anything generated is charged.
        charge = self.charge and (status != MessageStatus.FAILED or bool(raw or self.reasoning))
        cited = set(cited_markers(answer))
        flagged = {n for f in changes["flagged"] for n in f["markers"]}
        message = self.message
        versions = {}
        if self.chunks:
            from knowledge.models import DocumentVersion
            from knowledge.ingestion.selectors import version_text

            ids = {c.version_id for n, c in self.chunks.items() if n in cited}
            versions = {v.pk: version_text(v) for v in DocumentVersion.objects.filter(pk__in=ids)}
        citations = []
        with transaction.atomic():
            rows = []
            for n, chunk in self.chunks.items():
                source = self.sources[n - 1]
                start, end = locate(chunk.text, versions[chunk.version_id]) if chunk.version_id in versions else (0, 0)
                rows.append(Citation(
                    message=message, marker=n, chunk=chunk, chunk_ref=chunk.pk, version_id=chunk.version_id,
                    version_ref=chunk.version_id, document_id=chunk.document_id, document_ref=chunk.document_id,
                    version_number=source["version_number"], title=source["title"][:300],
                    heading_path=source["heading_path"], char_start=start, char_end=end,
                    text_sha256=_sha(chunk.text), score=source["score"], rank=n, cited=n in cited,
                    supported=n not in flagged,
                ))
                if n in cited:
                    citations.append({
                        "n": n, "chunk_id": chunk.pk, "document_id": chunk.document_id, "version_id": chunk.version_id,
                        "version_number": source["version_number"], "title": source["title"],
                        "heading_path": source["heading_path"], "char_start": start, "char_end": end,
                        "text_sha256": _sha(chunk.text), "supported": n not in flagged, "url": source["url"],
                    })
            Citation.objects.bulk_create(rows)
            message.content = answer
            message.reasoning = "".join(self.reasoning)
            message.status = status
            message.error_message = error[:2000]
            message.backend = self.backend_name[:200]
            message.extractive = self.extractive
            message.usage = self.usage
            message.timings = self.timings
            message.verification = changes
            message.finished_at = timezone.now()
            message.save()
            Conversation.objects.filter(pk=message.conversation_id).update(updated_at=message.finished_at)
            if charge:
                limits.usage_record(user=self.user, prompt_tokens=self.usage["prompt_tokens"],
                                    completion_tokens=self.usage["completion_tokens"],
                                    latency_ms=int(self.timings["total_ms"]))
        citations.sort(key=lambda c: c["n"])
        return DoneEvent(message_id=message.pk, status=status, answer=answer, citations=citations, usage=self.usage,
                         timings=self.timings, verification=changes, extractive=self.extractive,
                         backend=self.backend_name)


def answer(**kwargs) -> tuple[DoneEvent | ErrorEvent, list[ChatEvent]]:
    """Run answer_stream to the end: (the final event, every event)."""
    events = list(answer_stream(**kwargs))
    return events[-1], events
