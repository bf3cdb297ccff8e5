"""Clean extracted blocks: normalise characters and whitespace, drop page furniture and duplicates."""

import re
import unicodedata
import zlib
from collections import Counter

import numpy as np

from .blocks import Block, ExtractedDocument, render_markdown

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
# Full-width punctuation that Chinese text uses as its own: left as written.
_KEEP_FULL_WIDTH = set("！（），：；？～")
_ZERO_WIDTH = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}，。；：！？、“”]) (?=[{_CJK}，。；：！？、“”])")


def _width_table() -> dict[int, str]:
    table = {}
    for code in range(0xFF01, 0xFF5F):
        char = chr(code)
        if char not in _KEEP_FULL_WIDTH:
            table[code] = unicodedata.normalize("NFKC", char)
    for code in list(range(0xFF61, 0xFFEF)) + list(range(0xFB00, 0xFB07)):
        normalized = unicodedata.normalize("NFKC", chr(code))
        if normalized != chr(code):
            table[code] = normalized
    table[0x3000] = " "
    return table


_WIDTH = _width_table()


def normalize_text(text: str, *, code: bool = False) -> str:
    """Full-width letters, digits and symbols to ASCII (Chinese punctuation kept), tidy whitespace."""
    text = _ZERO_WIDTH.sub("", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if code:
        return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    text = text.translate(_WIDTH)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(line for line in lines if line)
    return _SPACE_BETWEEN_CJK.sub("", text)


# ---------------------------------------------------------------------------------------------
# Page headers, footers and numbers

_PAGE_NUMBER = re.compile(
    r"(?ix)^\s*(?:"
    r"[-–—]?\s*(?:page\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*[-–—]?"
    r"|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"
    r"|共\s*\d{1,4}\s*页\s*第\s*\d{1,4}\s*页"
    r"|[-–—]?\s*[ivxlc]{1,6}\s*[-–—]?"
    r")\s*$"
)
EDGE_LINES = 2
# Running headers and footers are short; a long line at the top of a page is body text.
FURNITURE_MAX_CHARS = 80


def remove_page_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and lines repeated at the top or bottom of most pages.

    A line near a page edge that repeats exactly on most pages is furniture. Compared without
    its digits (running headers that carry the page number), only the very first or last line
    of a page qualifies, so that numbered body lines are not taken for headers.
    """
    edges = [_edge_indexes(lines) for lines in pages]
    extremes = [_extreme_indexes(lines) for lines in pages]
    exact: Counter = Counter()
    fuzzy: Counter = Counter()
    for lines, edge, extreme in zip(pages, edges, extremes):
        exact.update({_exact_key(lines[index]) for index in edge})
        fuzzy.update({_furniture_key(lines[index]) for index in extreme})
    threshold = max(2, (len(pages) + 1) // 2)
    enough = len(pages) >= 3
    cleaned = []
    for lines, edge, extreme in zip(pages, edges, extremes):
        drop = {
            index
            for index in edge
            if _PAGE_NUMBER.match(lines[index])
            or (enough and exact[_exact_key(lines[index])] >= threshold)
            or (enough and index in extreme and fuzzy[_furniture_key(lines[index])] >= threshold)
        }
        cleaned.append([line for index, line in enumerate(lines) if index not in drop])
    return cleaned


def _edge_indexes(lines: list[str]) -> list[int]:
    filled = [index for index, line in enumerate(lines) if line.strip()]
    edges = set(filled[:EDGE_LINES] + filled[-EDGE_LINES:])
    return sorted(index for index in edges if len(lines[index].strip()) <= FURNITURE_MAX_CHARS)


def _extreme_indexes(lines: list[str]) -> set[int]:
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return {index for index in filled[:1] + filled[-1:] if len(lines[index].strip()) <= FURNITURE_MAX_CHARS}


def _exact_key(line: str) -> str:
    return " ".join(line.split()).lower()


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", _exact_key(line))


# ---------------------------------------------------------------------------------------------
# Duplicate paragraphs

NEAR_DUPLICATE_JACCARD = 0.85
_MIN_NEAR_DUPLICATE_CHARS = 20
_SHINGLE = 3
_PERMUTATIONS = 64
_BANDS = 16  # 16 bands of 4 rows: pairs near the threshold almost always share a band
_PRIME = (1 << 61) - 1
_RNG = np.random.default_rng(20240301)
_A = _RNG.integers(1, _PRIME, size=_PERMUTATIONS, dtype=np.uint64)
_B = _RNG.integers(0, _PRIME, size=_PERMUTATIONS, dtype=np.uint64)


def _dedup_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _shingles(key: str) -> set[str]:
    if len(key) <= _SHINGLE:
        return {key}
    return {key[index : index + _SHINGLE] for index in range(len(key) - _SHINGLE + 1)}


def _minhash(shingles: set[str]) -> np.ndarray:
    hashes = np.fromiter((zlib.crc32(item.encode()) for item in shingles), dtype=np.uint64, count=len(shingles))
    # (a*x + b) mod p with 32-bit x and 61-bit a: keep a below 2^32 products by reducing a first.
    products = (_A[:, None] % (1 << 31)) * hashes[None, :] + _B[:, None]
    return (products % np.uint64(_PRIME)).min(axis=1)


def deduplicate(blocks: list[Block]) -> list[Block]:
    """Drop paragraphs and list items that repeat an earlier one exactly or nearly."""
    kept: list[Block] = []
    seen_exact: set[str] = set()
    buckets: dict[tuple, list[set[str]]] = {}
    rows = _PERMUTATIONS // _BANDS
    for block in blocks:
        if block.kind not in ("paragraph", "list_item"):
            kept.append(block)
            continue
        key = _dedup_key(block.text)
        if not key:
            continue
        if key in seen_exact:
            continue
        seen_exact.add(key)
        if len(key) < _MIN_NEAR_DUPLICATE_CHARS:
            kept.append(block)
            continue
        shingles = _shingles(key)
        signature = _minhash(shingles)
        bands = [(band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(_BANDS)]
        candidates = {id(other): other for band in bands for other in buckets.get(band, [])}
        if any(_jaccard(shingles, other) >= NEAR_DUPLICATE_JACCARD for other in candidates.values()):
            continue
        for band in bands:
            buckets.setdefault(band, []).append(shingles)
        kept.append(block)
    return kept


def _jaccard(left: set[str], right: set[str]) -> float:
    return len(left & right) / len(left | right) if left or right else 1.0


# ---------------------------------------------------------------------------------------------


def clean_blocks(blocks: list[Block]) -> list[Block]:
    cleaned = []
    for block in blocks:
        text = normalize_text(block.text, code=block.kind == "code")
        if not text:
            continue
        updated = block.with_text(text)
        updated.heading_path = [normalize_text(part) for part in block.heading_path]
        if block.table_header:
            updated.table_header = normalize_text(block.table_header)
        cleaned.append(updated)
    return deduplicate(cleaned)


def clean_document(document: ExtractedDocument) -> ExtractedDocument:
    blocks = clean_blocks(document.blocks)
    return ExtractedDocument(markdown=render_markdown(blocks), blocks=blocks, meta=dict(document.meta))
