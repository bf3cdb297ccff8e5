"""Splitting DeepSeek-R1 output into reasoning and answer: `<think>…</think>` in the text stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .base import Delta

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Feed text pieces; get Deltas. Tags split across pieces are handled by holding back a
    possible tag prefix. A stream that starts without <think> is all answer (except that R1
    templates sometimes open the think block in the prompt: a lone </think> ends reasoning)."""

    def __init__(self) -> None:
        self.buffer = ""
        self.in_think = False
        self.seen_any = False
        self.pending_answer = ""  # answer text before a possible lone </think>

    def feed(self, text: str) -> Iterator[Delta]:
        self.buffer += text
        while self.buffer:
            if self.in_think:
                idx = self.buffer.find(CLOSE)
                if idx >= 0:
                    if idx:
                        yield Delta("reasoning", self.buffer[:idx])
                    self.buffer = self.buffer[idx + len(CLOSE):].lstrip("\n")
                    self.in_think = False
                    continue
                keep = _partial_suffix(self.buffer, CLOSE)
                out, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep:]
                if out:
                    yield Delta("reasoning", out)
                return
            if not self.seen_any:
                stripped = self.buffer.lstrip()
                if stripped.startswith(OPEN):
                    self.buffer = stripped[len(OPEN):]
                    self.in_think = True
                    self.seen_any = True
                    continue
                if OPEN.startswith(stripped):  # could still become <think>
                    return
                self.seen_any = True
            idx = self.buffer.find(OPEN)
            if idx >= 0:
                if idx:
                    yield Delta("answer", self.buffer[:idx])
                self.buffer = self.buffer[idx + len(OPEN):]
                self.in_think = True
                continue
            keep = _partial_suffix(self.buffer, OPEN)
            out, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep:]
            if out:
                yield Delta("answer", out)
            return

    def flush(self) -> Iterator[Delta]:
        if self.buffer:
            yield Delta("reasoning" if self.in_think else "answer", self.buffer)
        self.buffer = ""


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def split_think(pieces: Iterable[str]) -> Iterator[Delta]:
    splitter = ThinkSplitter()
    for piece in pieces:
        yield from splitter.feed(piece)
    yield from splitter.flush()
