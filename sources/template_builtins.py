"""Overrides of Django's built-in tags and filters for source row templates (sources.rendering):
the ones whose argument can make one record's output huge are capped or refused, so a template
such as `{{ title|ljust:"2000000000" }}` or `{% lorem 100000000 w %}` is an error at save, not a
worker that runs out of memory at the next sync."""

from __future__ import annotations

import re

from django.template import Library, TemplateSyntaxError
from django.template import defaultfilters
from django.utils.translation import gettext as _

register = Library()

MAX_WIDTH = 1000  # the widest ljust/rjust/center/stringformat field, in characters
MAX_DECIMALS = 50  # floatformat's precision


def _refused(name: str):
    def tag(parser, token):
        raise TemplateSyntaxError(_("The tag “%(name)s” is not available in source templates.") % {"name": name})
    return tag


for _name in ("lorem", "debug", "include", "extends", "block", "load", "csrf_token", "url", "querystring"):
    register.tag(_name, _refused(_name))


def _capped(arg, maximum: int, message: str) -> None:
    """Every number written in a format argument ("10s", "08.3f", "-3") at most `maximum`."""
    if any(int(number) > maximum for number in re.findall(r"\d+", str(arg))):
        raise TemplateSyntaxError(message % {"max": maximum})


def _width(arg) -> int:
    try:
        width = int(arg)
    except (TypeError, ValueError):
        return 0
    if width > MAX_WIDTH:
        raise TemplateSyntaxError(_("A width over %(max)d is not allowed in source templates.") % {"max": MAX_WIDTH})
    return width


@register.filter(is_safe=True)
def ljust(value, arg):
    return defaultfilters.ljust(value, _width(arg))


@register.filter(is_safe=True)
def rjust(value, arg):
    return defaultfilters.rjust(value, _width(arg))


@register.filter(is_safe=True)
def center(value, arg):
    return defaultfilters.center(value, _width(arg))


@register.filter(is_safe=True)
def stringformat(value, arg):
    _capped(arg, MAX_WIDTH, _("A width over %(max)d is not allowed in source templates."))
    return defaultfilters.stringformat(value, arg)


@register.filter(is_safe=True)
def floatformat(value, arg=-1):
    _capped(arg, MAX_DECIMALS, _("More than %(max)d decimals are not allowed in source templates."))
    return defaultfilters.floatformat(value, arg)
