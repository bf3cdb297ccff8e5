"""Validation of a knowledge base's `chunk_settings` and `retrieval_settings` (JSON a manager
types): types, ranges, known keys, and chunks that fit the embedding model's window. The services
call it before saving, so a bad value is a 400 naming the field, never a later crash in ingestion
or search. The retrieval keys mirror `retrieval.search.DEFAULT_SETTINGS` (a test keeps them in
step; knowledge does not import retrieval)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .embedding import model_max_tokens

CHUNK_TOKENS_MIN = 16


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range(low: float, high: float, *, integer: bool = False):
    def check(value: Any) -> str | None:
        if not (_integer(value) if integer else _number(value)) or not low <= value <= high:
            kind = _("an integer") if integer else _("a number")
            return _("%(kind)s from %(low)s to %(high)s") % {"kind": kind, "low": low, "high": high}
        return None

    return check


def _choice(*choices: str):
    def check(value: Any) -> str | None:
        if value not in choices:
            return _("one of %(choices)s") % {"choices": ", ".join(choices)}
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else _("true or false")


def _weights(value: Any) -> str | None:
    expected = _("an object {\"bm25\": number, \"dense\": number}, each from 0 to 10")
    if not isinstance(value, dict) or not value or set(value) - {"bm25", "dense"}:
        return expected
    if any(not _number(v) or not 0 <= v <= 10 for v in value.values()):
        return expected
    return None


def _thresholds(value: Any) -> str | None:
    expected = _("an object of language pairs (\"en-zh\": number from -1 to 1)")
    if not isinstance(value, dict):
        return expected
    for pair, threshold in value.items():
        languages = str(pair).split("-")
        if len(languages) != 2 or not all(languages) or not _number(threshold) or not -1 <= threshold <= 1:
            return expected
    return None


def _optional(check):
    def optional(value: Any) -> str | None:
        expected = check(value) if value is not None else None
        return _("%(expected)s, or null") % {"expected": expected} if expected else None

    return optional


RETRIEVAL_SETTINGS: dict[str, Any] = {
    "fusion": _choice("weighted", "rrf"),
    "weights": _weights,
    "weights_cjk_monolingual": _weights,
    "bm25_weight_cross_language": _optional(_range(0, 10)),
    "dense_norm": _choice("floor", "minmax"),
    "bm25_norm": _choice("bound", "max"),
    "bm25_bound_unknown": _boolean,
    "dense_floor": _range(0, 0.99),
    "dense_min_span": _range(0, 1),
    "rrf_k": _range(1, 1000, integer=True),
    "candidates": _range(1, 1000, integer=True),
    "rerank_top": _range(1, 200, integer=True),
    "no_answer_threshold": _range(-1, 100),
    "no_answer_bm25_threshold": _range(-1, 100),
    "no_answer_dense_threshold": _range(-1, 1),
    "relevance": _choice("fused", "cosine"),
    "no_answer_thresholds": _thresholds,
    "rerank_min_score": _range(-100, 100),
    "k1": _range(0, 10),
    "b": _range(0, 1),
    "ef_search": _range(1, 1000, integer=True),
}


def _object(field: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValidationError({field: _("Settings are a JSON object, e.g. {\"chunk_tokens\": 256}.")})
    return value


def validate_retrieval_settings(value: Any) -> dict:
    value = _object("retrieval_settings", value)
    errors = []
    for key, item in value.items():
        check = RETRIEVAL_SETTINGS.get(key)
        if check is None:
            errors.append(_("“%(key)s” is not a retrieval setting.") % {"key": key})
            continue
        expected = check(item)
        if expected:
            errors.append(_("%(key)s must be %(expected)s.") % {"key": key, "expected": expected})
    if errors:
        raise ValidationError({"retrieval_settings": errors})
    return value


def embedding_window_tokens() -> int:
    """The token window of the configured embedding model (what one chunk may hold)."""
    return model_max_tokens()


def validate_chunk_settings(value: Any) -> dict:
    value = _object("chunk_settings", value)
    errors = []
    unknown = sorted(set(value) - {"chunk_tokens", "overlap_tokens"})
    for key in unknown:
        errors.append(_("“%(key)s” is not a chunking setting.") % {"key": key})
    window = embedding_window_tokens()
    chunk_tokens = value.get("chunk_tokens", 256)
    if not _integer(chunk_tokens) or not CHUNK_TOKENS_MIN <= chunk_tokens <= window:
        errors.append(
            _("chunk_tokens must be an integer from %(low)s to %(high)s (the embedding model's window).")
            % {"low": CHUNK_TOKENS_MIN, "high": window}
        )
    overlap = value.get("overlap_tokens", 32)
    limit = chunk_tokens // 2 if _integer(chunk_tokens) else 0
    if not _integer(overlap) or not 0 <= overlap <= limit:
        errors.append(
            _("overlap_tokens must be an integer from 0 to half of chunk_tokens (%(high)s).") % {"high": limit}
        )
    if errors:
        raise ValidationError({"chunk_settings": errors})
    return value


SOURCE_FAILURE_DAYS_MAX = 365


def validate_source_failure_days(value: Any) -> int:
    """After how many days of failing syncs a source's documents are stale (knowledge health)."""
    if not _integer(value) or not 1 <= value <= SOURCE_FAILURE_DAYS_MAX:
        raise ValidationError({"source_failure_days": _("%(kind)s from %(low)s to %(high)s") % {
            "kind": _("an integer"), "low": 1, "high": SOURCE_FAILURE_DAYS_MAX}})
    return value
