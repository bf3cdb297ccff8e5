"""Word-level diffs of two texts, for Chinese and English alike.

The texts are first compared line by line; inside each changed block the lines are split into
words (jieba for Chinese, letter/digit runs for other scripts, every space and punctuation mark a
token of its own) and compared again. `diff_texts` returns plain data (served by the API as JSON);
`render_inline_html` and `render_side_by_side_html` turn it into escaped HTML for the pages.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

EQUAL, INSERT, DELETE = "equal", "insert", "delete"

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"  # Chinese: cut into words by jieba
    r"|(?P<number>\d+(?:[.,:/]\d+)+%?|\d+%)"  # 4.35, 1,000, 12:30, 50%: one change, never "4" "." "35"
    rf"|(?P<word>[^\W{_CJK}]+)"  # letters/digits/underscore of any other script
    r"|(?P<space>[^\S\n]+)"  # a run of blanks (never a newline)
    r"|(?P<other>.)",  # newline, punctuation, symbols: one token each
    re.DOTALL,
)
# Past this many tokens a changed block is shown as removed + added instead of word by word:
# SequenceMatcher is quadratic in the worst case.
MAX_BLOCK_TOKENS = 20_000


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(60)  # jieba logs its dictionary loading at INFO
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Split text into words, blanks and single punctuation marks; "".join(tokens) == text."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "cjk":
            tokens.extend(_jieba().cut(match.group(), HMM=True))
        else:
            tokens.append(match.group())
    return tokens


def _normalize(text: str) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _append(segments: list[list[str]], op: str, text: str) -> None:
    if not text:
        return
    if segments and segments[-1][0] == op:
        segments[-1][1] += text
    else:
        segments.append([op, text])


def _word_diff(old: str, new: str) -> tuple[list[list[str]], list[list[str]], list[list[str]], int, int]:
    """Word-level diff of two blocks: (old side, new side, inline, words removed, words added)."""
    a, b = tokenize(old), tokenize(new)
    old_side: list[list[str]] = []
    new_side: list[list[str]] = []
    inline: list[list[str]] = []
    if len(a) > MAX_BLOCK_TOKENS or len(b) > MAX_BLOCK_TOKENS:
        opcodes = [("replace", 0, len(a), 0, len(b))]
    else:
        opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    removed = added = 0
    for tag, i1, i2, j1, j2 in opcodes:
        old_text, new_text = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            for side in (old_side, new_side, inline):
                _append(side, EQUAL, old_text)
            continue
        removed += sum(1 for t in a[i1:i2] if not t.isspace())
        added += sum(1 for t in b[j1:j2] if not t.isspace())
        _append(old_side, DELETE, old_text)
        _append(new_side, INSERT, new_text)
        _append(inline, DELETE, old_text)
        _append(inline, INSERT, new_text)
    return old_side, new_side, inline, removed, added


def _split_lines(segments: list[list[str]]) -> list[list[list[str]]]:
    """Cut [op, text] segments of whole lines into one segment list per line, newlines left out."""
    lines: list[list[list[str]]] = [[]]
    for op, text in segments:
        for index, part in enumerate(text.split("\n")):
            if index:
                lines.append([])
            _append(lines[-1], op, part)
    if segments and segments[-1][1].endswith("\n"):
        lines.pop()
    return lines


def _lines(text: str) -> list[str]:
    """The lines of a text, each with its newline (the text's last line may have none)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def diff_texts(old: str, new: str, *, context: int | None = None) -> dict[str, Any]:
    """Compare two texts. Returns JSON-serializable data:

    - ``inline``: [[op, text], ...] with op in equal/insert/delete; joining the equal and
      delete parts gives `old`, the equal and insert parts give `new`.
    - ``rows``: side-by-side rows ``{"kind", "old_no", "new_no", "old", "new"}``: kind is
      equal/replace/delete/insert/skip, old/new are [[op, text], ...] for one line (None when the
      side has no line); a skip row (only with `context`) stands for ``count`` unchanged lines.
    - ``stats``: words and lines added and removed, and ``changed``.
    """
    old, new = _normalize(old), _normalize(new)
    old_lines, new_lines = _lines(old), _lines(new)
    # lines are matched without their newline: only the text's last line lacks one
    matcher = difflib.SequenceMatcher(
        None, [line.rstrip("\n") for line in old_lines], [line.rstrip("\n") for line in new_lines], autojunk=False
    )
    inline: list[list[str]] = []
    rows: list[dict[str, Any]] = []
    words_added = words_removed = lines_added = lines_removed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old_block, new_block = "".join(old_lines[i1:i2]), "".join(new_lines[j1:j2])
        if tag == "equal":
            # the blocks can differ only by a newline after the text's last line
            common = old_block.rstrip("\n") if old_block != new_block else old_block
            _append(inline, EQUAL, common)
            _append(inline, DELETE, old_block[len(common) :])
            _append(inline, INSERT, new_block[len(common) :])
            for offset in range(i2 - i1):
                line = old_lines[i1 + offset].rstrip("\n")
                segments = [[EQUAL, line]] if line else []
                rows.append(
                    {
                        "kind": EQUAL,
                        "old_no": i1 + offset + 1,
                        "new_no": j1 + offset + 1,
                        "old": segments,
                        "new": segments,
                    }
                )
            continue
        old_side, new_side, block_inline, removed, added = _word_diff(old_block, new_block)
        words_removed += removed
        words_added += added
        lines_removed += i2 - i1
        lines_added += j2 - j1
        for op, text in block_inline:
            _append(inline, op, text)
        old_rows = _split_lines(old_side) if i2 > i1 else []
        new_rows = _split_lines(new_side) if j2 > j1 else []
        for offset in range(max(len(old_rows), len(new_rows))):
            has_old, has_new = offset < len(old_rows), offset < len(new_rows)
            rows.append(
                {
                    "kind": "replace" if has_old and has_new else (DELETE if has_old else INSERT),
                    "old_no": i1 + offset + 1 if has_old else None,
                    "new_no": j1 + offset + 1 if has_new else None,
                    "old": old_rows[offset] if has_old else None,
                    "new": new_rows[offset] if has_new else None,
                }
            )
    if context is not None:
        rows = _collapse(rows, context)
    return {
        "inline": inline,
        "rows": rows,
        "stats": {
            "changed": old != new,
            "words_added": words_added,
            "words_removed": words_removed,
            "lines_added": lines_added,
            "lines_removed": lines_removed,
        },
    }


def _collapse(rows: list[dict[str, Any]], context: int) -> list[dict[str, Any]]:
    """Replace runs of unchanged rows farther than `context` rows from a change by a skip row."""
    changed = [i for i, row in enumerate(rows) if row["kind"] != EQUAL]
    keep = [False] * len(rows)
    for i in changed:
        for j in range(max(0, i - context), min(len(rows), i + context + 1)):
            keep[j] = True
    result: list[dict[str, Any]] = []
    skipped = 0
    for row, kept in zip(rows, keep):
        if kept:
            if skipped:
                result.append({"kind": "skip", "count": skipped})
                skipped = 0
            result.append(row)
        else:
            skipped += 1
    if skipped:
        result.append({"kind": "skip", "count": skipped})
    return result


# --- HTML rendering (everything escaped here; templates insert the result as is) ---------------

_TAGS = {INSERT: "ins", DELETE: "del"}


def _segments_html(segments: list[list[str]] | None) -> str:
    if not segments:
        return ""
    parts = []
    for op, text in segments:
        if op == EQUAL:
            parts.append(escape(text))
        else:
            tag = _TAGS[op]
            parts.append(f'<{tag} class="diff-{op}">{escape(text)}</{tag}>')
    return "".join(parts)


def render_inline_html(diff: dict[str, Any]) -> SafeString:
    """The whole text with deleted words struck through and inserted words underlined."""
    return mark_safe(f'<pre class="diff-inline">{_segments_html(diff["inline"])}</pre>')


def render_side_by_side_html(
    diff: dict[str, Any], *, old_label: str = "", new_label: str = "", skip_label: Any = "%(count)s unchanged lines"
) -> SafeString:
    """A two-column table: old lines on the left, new lines on the right, changed words marked.
    `skip_label` is a format string or a function of the count (for plural forms)."""
    out = ['<table class="diff-side">']
    if old_label or new_label:
        out.append(
            f'<thead><tr><th colspan="2">{escape(old_label)}</th><th colspan="2">{escape(new_label)}</th></tr></thead>'
        )
    out.append("<tbody>")
    for row in diff["rows"]:
        kind = row["kind"]
        if kind == "skip":
            out.append(
                f'<tr class="diff-row-skip"><td colspan="4">{escape(skip_label(row["count"]) if callable(skip_label) else skip_label % {"count": row["count"]})}</td></tr>'
            )
            continue
        old_no = "" if row["old_no"] is None else row["old_no"]
        new_no = "" if row["new_no"] is None else row["new_no"]
        old_class = "diff-empty" if row["old"] is None else ("diff-old" if kind != EQUAL else "")
        new_class = "diff-empty" if row["new"] is None else ("diff-new" if kind != EQUAL else "")
        out.append(
            f'<tr class="diff-row-{kind}">'
            f'<td class="diff-no">{old_no}</td><td class="diff-line {old_class}">{_segments_html(row["old"])}</td>'
            f'<td class="diff-no">{new_no}</td><td class="diff-line {new_class}">{_segments_html(row["new"])}</td>'
            "</tr>"
        )
    out.append("</tbody></table>")
    return mark_safe("".join(out))
