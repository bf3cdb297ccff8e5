"""An answer's HTML: Markdown sanitized as document pages are, then [n] markers made links to the
cited passage (only markers that have a stored citation)."""

from __future__ import annotations

import re

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from knowledge.rendering import render_markdown

from .pipeline import source_url

_MARKER = re.compile(r"\[(\d{1,3})\]")
_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")


def answer_html(message_id: int, text: str, markers: set[int]) -> SafeString:
    html = str(render_markdown(text or ""))

    def link(match: re.Match) -> str:
        n = int(match.group(1))
        if n not in markers:
            return match.group(0)
        return str(format_html('<a class="cite" href="{}" data-marker="{}">[{}]</a>', source_url(message_id, n), n, n))

    # Replace only in text between tags, never inside an attribute.
    parts = _TAG_OR_TEXT.split(html)
    out = [part if part.startswith("<") else _MARKER.sub(link, part) for part in parts]
    return mark_safe("".join(out))  # noqa: S308 - built from sanitized HTML and format_html
