"""Turning one record (a dict of column values) into a document title and Markdown body.

Two template styles: `{column}` placeholders (a plain substitution, no attribute access, unlike
str.format), or Django template syntax when the text contains `{{` or `{%`. Django templates run
in a separate engine with no loaders, no extra tag libraries and no autoescape (the output is
Markdown, sanitized when rendered); the context holds only the record's plain values. Tags and
filters that could make one record's text huge or reach outside the record are refused or capped
(sources.template_builtins), at save where the template alone shows it.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
import uuid
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.utils.translation import gettext as _

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A template that does not parse or names a field the record lacks."""


@lru_cache(maxsize=1)
def _engine() -> Engine:
    # Django's builtins, then sources.template_builtins over them: tags that reach files, URLs or
    # make text out of nothing are refused, filters that pad to a width are capped.
    builtins = [*Engine.default_builtins, "sources.template_builtins"]
    return Engine(dirs=[], app_dirs=False, libraries={}, builtins=builtins, autoescape=False, string_if_invalid="",
                  loaders=[])


@lru_cache(maxsize=256)
def _compile(template: str):
    try:
        return _engine().from_string(template)
    except TemplateSyntaxError as exc:
        raise TemplateError(_("Template error: %(error)s") % {"error": exc}) from None


def is_django_syntax(template: str) -> bool:
    return "{{" in template or "{%" in template


def validate_template(template: str) -> None:
    if is_django_syntax(template):
        compiled = _compile(template)
        try:  # once on an empty record: a capped filter's literal argument fails here, at save
            compiled.render(Context({}, autoescape=False))
        except TemplateSyntaxError as exc:
            raise TemplateError(_("Template error: %(error)s") % {"error": exc}) from None
        except Exception:  # noqa: BLE001 (filters that need a real value are the record's business)
            pass


def plain(value: Any) -> Any:
    """JSON-like values only: the template must not reach objects with methods."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(template: str, record: dict[str, Any]) -> str:
    if is_django_syntax(template):
        try:
            return _compile(template).render(Context(record, autoescape=False))
        except TemplateSyntaxError as exc:  # a capped filter's argument that came from the record
            raise TemplateError(_("Template error: %(error)s") % {"error": exc}) from None

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in record:
            raise TemplateError(_("The record has no field “%(name)s”.") % {"name": name})
        return _text(record[name])

    return PLACEHOLDER.sub(substitute, template)


def lookup(record: Any, path: str) -> Any:
    """A dot-separated path into nested dicts/lists: `data.items`, `id`, `meta.0.code`."""
    value = record
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def content_hash(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n\x00\n{body}".encode("utf-8")).hexdigest()
