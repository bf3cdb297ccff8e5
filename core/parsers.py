"""The API's JSON parser: a size and a nesting-depth limit, and every malformed body a 400.

DRF's own parser hands the body to `json.load`, which recurses once per level: a body of a few
thousand `[` raised RecursionError, a 500 (with the whole traceback page when DEBUG is on). Here
the depth is measured without recursion before decoding (brackets outside strings), so a body
nested deeper than API_JSON_MAX_DEPTH is refused with a 400 and never decoded.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply brackets nest outside strings (an unterminated string counts its brackets)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_limited(raw: bytes, *, encoding: str = "utf-8", strict: bool = True):
    """Decode a JSON body or raise ParseError (400) with a translated message."""
    max_depth = int(getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH))
    if json_depth(raw) > max_depth:
        raise ParseError(_("The JSON body is nested more than %(depth)s levels deep.") % {"depth": max_depth})

    def refuse_constant(name: str):
        raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")

    try:
        return json.loads(raw.decode(encoding), parse_constant=refuse_constant if strict else None)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ParseError(_("The body is not valid JSON: %(error)s") % {"error": str(exc)[:200]}) from None


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        max_bytes = int(getattr(settings, "API_JSON_MAX_BYTES", DEFAULT_MAX_BYTES))
        raw = stream.read(max_bytes + 1) if stream is not None else b""
        if len(raw) > max_bytes:
            raise ParseError(_("The JSON body is larger than %(limit)s bytes.") % {"limit": max_bytes})
        return loads_limited(raw, encoding=encoding, strict=api_settings.STRICT_JSON)
