"""/v1/: the OpenAI-compatible endpoint (mounted in config/urls.py). API-key authentication only,
so the pages' login redirect does not apply."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import openai_api

urlpatterns = [
    path("models", login_not_required(openai_api.ModelListView.as_view()), name="openai-models"),
    path("models/<path:model>", login_not_required(openai_api.ModelDetailView.as_view()), name="openai-model"),
    path("chat/completions", login_not_required(openai_api.ChatCompletionsView.as_view()), name="openai-chat-completions"),
]
