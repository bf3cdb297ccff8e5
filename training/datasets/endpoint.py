"""The model endpoint used for paraphrase, back-translation and QA generation: any
llm.base.ChatBackend, configured by TRAINING_LLM_BACKEND = "module.path:factory"."""

from __future__ import annotations

import importlib

from django.conf import settings
from django.utils.translation import gettext as _

from llm.base import ChatBackend


class EndpointMisconfigured(Exception):
    pass


def configured_backend() -> ChatBackend | None:
    spec = getattr(settings, "TRAINING_LLM_BACKEND", None)
    if not spec:
        return None
    module_name, _sep, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "backend")
        return factory()
    except Exception as exc:
        raise EndpointMisconfigured(
            _("TRAINING_LLM_BACKEND=%(spec)s cannot be loaded: %(error)s") % {"spec": spec, "error": exc}
        ) from exc
