"""A document's title from its content: the first heading of Markdown or text, the title in a
PDF's or a Word file's metadata. None when there is none (the caller then uses the file name)."""

from __future__ import annotations

import warnings
from typing import IO

import docx
from pypdf import PdfReader

from .detect import declared_kind
from .extract import extract

# The first heading is near the top: only this much of a long text is parsed for it.
HEAD_CHARS = 64 * 1024
MAX_TITLE_CHARS = 300


def title_from_text(text: str, name: str) -> str | None:
    """The first heading of Markdown or plain text (a `#` line, an underlined line, 第一章 …)."""
    head = text[:HEAD_CHARS]
    if not head.strip():
        return None
    try:
        document = extract(head.encode("utf-8"), name)
    except Exception:  # noqa: BLE001 - no title is the answer for text the reader refuses
        return None
    for block in document.blocks:
        if block.kind == "heading":
            return _clean(block.text)
    return None


def title_from_file(handle: IO[bytes], name: str) -> str | None:
    """The title in a PDF's or DOCX's metadata, read from a seekable file (not loaded whole)."""
    kind = declared_kind(name)
    try:
        handle.seek(0)
        if kind == "pdf":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                metadata = PdfReader(handle, strict=False).metadata
            return _clean(metadata.title if metadata is not None else None)
        if kind == "docx":
            return _clean(docx.Document(handle).core_properties.title)
    except Exception:  # noqa: BLE001 - damaged metadata only means no title; ingestion reports the damage
        return None
    finally:
        handle.seek(0)
    return None


def _clean(title: str | None) -> str | None:
    title = " ".join((title or "").split())
    return title[:MAX_TITLE_CHARS] or None
