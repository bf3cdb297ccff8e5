"""From a configured endpoint to a backend object. Chat and training both come through here."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .base import BackendError, active_model
from .extractive import ExtractiveBackend


def backend_for_endpoint(endpoint, *, extractive_params: dict | None = None):
    """An object implementing llm.base.ChatBackend, or the ExtractiveBackend (no endpoint, the
    extractive kind, or a fine-tuned kind with no active model version)."""
    if endpoint is None or not endpoint.enabled or endpoint.kind == "extractive":
        return ExtractiveBackend(extractive_params)
    if endpoint.kind == "openai":
        from sources.crypto import CredentialsUnreadable, decrypt

        from .openai_compat import OpenAICompatibleBackend

        try:
            api_key = decrypt(endpoint.api_key_encrypted)
        except CredentialsUnreadable:
            raise BackendError(_("The model endpoint's API key cannot be decrypted: enter it again.")) from None
        return OpenAICompatibleBackend(
            base_url=endpoint.base_url, model=endpoint.model, api_key=api_key,
            context_window=endpoint.context_window, connect_timeout=endpoint.connect_timeout_s,
            read_timeout=endpoint.read_timeout_s, tokenizer_path=endpoint.tokenizer_path, name=endpoint.name,
        )
    if endpoint.kind == "finetuned":
        model = active_model()
        if model is None:
            # No fine-tuned version is active: answer without a model rather than fail.
            return ExtractiveBackend(extractive_params)
        try:
            from . import local
        except ImportError:
            return ExtractiveBackend(extractive_params)
        return local.get_backend(model)
    raise BackendError(_("Unknown model endpoint kind."))
