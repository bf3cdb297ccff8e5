"""Cleaning steps over row payloads. Each step reports exactly what it removed or changed,
by the row's index in the version it started from."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from .pii import mask_pii

PREVIEW_CHARS = 120
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass
class CleaningOptions:
    exact_duplicates: bool = True
    near_duplicates: bool = True
    near_threshold: float = 0.8  # Jaccard similarity of character 3-gram sets
    min_answer_tokens: int = 0  # 0: off
    max_tokens: int = 0  # 0: off; rows longer than this (rendered conversation) are removed
    mask_pii: bool = False


def row_text(payload: dict) -> str:
    return "\n".join(m["content"] for m in payload["messages"]) + ("\n" + payload["rejected"] if payload.get("rejected") else "")


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), case-folded, without whitespace and punctuation."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def _preview(payload: dict) -> str:
    text = " · ".join(m["content"] for m in payload["messages"] if m["role"] != "system")
    return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")


def shingles(text: str, k: int = 3) -> set[str]:
    """Character k-grams of the normalized text: works for Chinese (no spaces) and English alike."""
    text = normalize(text)
    if len(text) <= k:
        return {text} if text else set()
    return {text[i : i + k] for i in range(len(text) - k + 1)}


class MinHash:
    """MinHash signatures with LSH banding; candidates are confirmed by exact Jaccard."""

    PRIME = (1 << 31) - 1

    def __init__(self, num_perm: int = 64, bands: int = 16, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, self.PRIME, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, self.PRIME, size=num_perm, dtype=np.uint64)
        self.bands, self.rows = bands, num_perm // bands

    def signature(self, grams: set[str]) -> np.ndarray:
        if not grams:
            return np.full(len(self.a), self.PRIME, dtype=np.uint64)
        h = np.array(
            [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % self.PRIME for g in grams],
            dtype=np.uint64,
        )
        return ((self.a[:, None] * h[None, :] + self.b[:, None]) % self.PRIME).min(axis=1)

    def band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows : (i + 1) * self.rows].tobytes() + bytes([i]) for i in range(self.bands)]


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


Rows = list[tuple[int, dict]]  # (index in the source version, payload)


def step_empty(rows: Rows) -> tuple[Rows, dict]:
    kept, removed = [], []
    for index, p in rows:
        if any(not m["content"].strip() for m in p["messages"]) or not p["messages"]:
            removed.append({"index": index, "reason": "empty", "preview": _preview(p)})
        else:
            kept.append((index, p))
    return kept, {"step": "empty", "removed": removed, "changed": []}


def step_exact_duplicates(rows: Rows) -> tuple[Rows, dict]:
    seen: dict[str, int] = {}
    kept, removed = [], []
    for index, p in rows:
        key = hashlib.sha256("\x1f".join([normalize(m["content"]) for m in p["messages"]] + [normalize(p.get("rejected", ""))]).encode()).hexdigest()
        if key in seen:
            removed.append({"index": index, "duplicate_of": seen[key], "preview": _preview(p)})
        else:
            seen[key] = index
            kept.append((index, p))
    return kept, {"step": "exact_duplicates", "removed": removed, "changed": []}


def step_near_duplicates(rows: Rows, threshold: float = 0.8) -> tuple[Rows, dict]:
    minhash = MinHash()
    buckets: dict[bytes, list[int]] = {}
    kept_grams: dict[int, set[str]] = {}
    kept, removed = [], []
    for index, p in rows:
        grams = shingles(row_text(p))
        keys = minhash.band_keys(minhash.signature(grams))
        candidates = {c for key in keys for c in buckets.get(key, ())}
        best, best_sim = None, 0.0
        for c in sorted(candidates):
            sim = jaccard(grams, kept_grams[c])
            if sim > best_sim:
                best, best_sim = c, sim
        if best is not None and best_sim >= threshold:
            removed.append({"index": index, "duplicate_of": best, "similarity": round(best_sim, 3), "preview": _preview(p)})
            continue
        kept.append((index, p))
        kept_grams[index] = grams
        for key in keys:
            buckets.setdefault(key, []).append(index)
    return kept, {"step": "near_duplicates", "removed": removed, "changed": [], "threshold": threshold}


def step_length(rows: Rows, tokenizer, *, min_answer_tokens: int, max_tokens: int) -> tuple[Rows, dict]:
    from .tokenizer import conversation_tokens, count_tokens

    kept, removed = [], []
    for index, p in rows:
        if min_answer_tokens:
            answer = count_tokens(tokenizer, p["messages"][-1]["content"])
            if answer < min_answer_tokens:
                removed.append({"index": index, "reason": "too_short", "tokens": answer, "limit": min_answer_tokens, "preview": _preview(p)})
                continue
        if max_tokens:
            total = conversation_tokens(tokenizer, p["messages"])
            if total > max_tokens:
                removed.append({"index": index, "reason": "too_long", "tokens": total, "limit": max_tokens, "preview": _preview(p)})
                continue
        kept.append((index, p))
    return kept, {"step": "length", "removed": removed, "changed": [], "min_answer_tokens": min_answer_tokens, "max_tokens": max_tokens}


def step_mask_pii(rows: Rows) -> tuple[Rows, dict]:
    out, changed = [], []
    for index, p in rows:
        counts: dict[str, int] = {}
        messages = []
        for m in p["messages"]:
            text, found = mask_pii(m["content"])
            for k, v in found.items():
                counts[k] = counts.get(k, 0) + v
            messages.append({**m, "content": text})
        rejected, found = mask_pii(p.get("rejected", ""))
        for k, v in found.items():
            counts[k] = counts.get(k, 0) + v
        if counts:
            p = {**p, "messages": messages, "rejected": rejected}
            # The report shows the masked text only: it must not keep what it removed.
            changed.append({"index": index, "kinds": counts, "preview": _preview(p)})
        out.append((index, p))
    return out, {"step": "pii", "removed": [], "changed": changed}


def clean(payloads: list[dict], options: CleaningOptions, tokenizer=None) -> tuple[list[dict], list[dict]]:
    """(cleaned payloads, report: one entry per step that ran). Length steps need `tokenizer`."""
    rows: Rows = list(enumerate(payloads))
    report = []
    for run in _steps(options, tokenizer):
        before = len(rows)
        rows, entry = run(rows)
        entry.update(before=before, after=len(rows))
        report.append(entry)
    return [p for _i, p in rows], report


def _steps(options: CleaningOptions, tokenizer):
    yield step_empty
    if options.mask_pii:  # before deduplication: rows differing only in a phone number are duplicates
        yield step_mask_pii
    if options.exact_duplicates:
        yield step_exact_duplicates
    if options.near_duplicates:
        yield lambda rows: step_near_duplicates(rows, options.near_threshold)
    if options.min_answer_tokens or options.max_tokens:
        if tokenizer is None:
            raise ValueError("length filtering needs a tokenizer")
        yield lambda rows: step_length(
            rows, tokenizer, min_answer_tokens=options.min_answer_tokens, max_tokens=options.max_tokens
        )
