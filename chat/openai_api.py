"""The OpenAI-compatible endpoint: `POST /v1/chat/completions` (streaming and not) and `GET /v1/models`.

Every assistant the key's user may use is a model (its id is the assistant's name). A request goes
through the same pipeline as the chat page (`chat.pipeline.answer_stream`), as the key's user, so
retrieval is filtered by exactly the same permissions. Beyond OpenAI's format:

- `choices[0].message.citations` (and, streaming, `citations` on the final chunk's delta): the
  passages the answer cites, each pinned to its chunk, document version and character span;
- `reasoning_content` (message, or stream delta): DeepSeek-R1 reasoning, as DeepSeek's API sends it;
- `choices[0].message.status` / final chunk `status`: "done" or "no_knowledge";
- final stream chunk `verified_content`: the stored answer after citation verification (a marker
  pointing at no source removed, a clearly supported sentence given its marker), which may differ
  from the concatenated streamed deltas.

The assistant's own system prompt and settings apply: client `system` messages, `temperature` and
`max_tokens` are ignored; the history is the most recent turns of `messages` (the pipeline keeps
`chat.pipeline.HISTORY_MESSAGES`). Errors use OpenAI's JSON shape
`{"error": {"message", "type", "param", "code"}}`; a refusal by the rate limit or the quota is a 429
with `Retry-After`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from accounts import limits
from accounts.authentication import ApiKeyAuthentication
from core.parsers import loads_limited

from .pipeline import (AnswerDelta, DoneEvent, ErrorEvent, ReasoningDelta, answer_stream, storable,
                       unstorable_text_message, validate_question)
from .policy import assistant_policy

logger = logging.getLogger(__name__)

ROLES = {"system", "developer", "user", "assistant", "tool"}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> HttpResponse:
        response = JsonResponse(self.body(), status=self.status, json_dumps_params={"ensure_ascii": False})
        for name, value in self.headers.items():
            response[name] = value
        return response


def _refusal(refusal: limits.RateLimited) -> OpenAIError:
    code = "insufficient_quota" if refusal.reason in ("quota", "user_quota") else "rate_limit_exceeded"
    return OpenAIError(429, refusal.message, type="rate_limit_error" if code == "rate_limit_exceeded" else code,
                       code=code, headers={"Retry-After": str(refusal.retry_after)})


class OpenAIView(APIView):
    """API-key authentication, and every error in OpenAI's shape."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, OpenAIError):
            return exc.response()
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            message = str(exc.detail) if isinstance(exc, exceptions.AuthenticationFailed) else _(
                "No API key: send it as the header “Authorization: Bearer <API key>”.")
            error = OpenAIError(401, message, code="invalid_api_key")
            response = error.response()
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        if isinstance(exc, exceptions.MethodNotAllowed):
            return OpenAIError(405, str(exc.detail), code="method_not_allowed").response()
        if isinstance(exc, exceptions.ParseError):
            return OpenAIError(400, _("The request body is not valid JSON."), code="invalid_json").response()
        if isinstance(exc, RequestDataTooBig):
            return OpenAIError(413, _("The request body is too large."), code="request_too_large").response()
        if isinstance(exc, exceptions.APIException):
            return OpenAIError(exc.status_code, str(exc.detail)).response()
        logger.exception("/v1 request failed")
        return OpenAIError(500, _("Something went wrong. You can try again."), type="server_error").response()


def _model_entry(assistant) -> dict:
    return {
        "id": assistant.name,
        "object": "model",
        "created": int(assistant.created_at.timestamp()),
        "owned_by": "organization",
        "description": assistant.description,
    }


class ModelSerializer(serializers.Serializer):
    """Schema only: one model (an assistant)."""

    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    owned_by = serializers.CharField()
    description = serializers.CharField()

ErrorSerializer = inline_serializer(
    "OpenAIError",
    {"error": inline_serializer("OpenAIErrorBody", {
        "message": serializers.CharField(), "type": serializers.CharField(),
        "param": serializers.CharField(allow_null=True), "code": serializers.CharField(allow_null=True)})},
)


def _usable_assistants(user):
    return assistant_policy.instances_user_has_permission_for(user, "use").order_by("-is_default", "name")


class ModelListView(OpenAIView):
    @extend_schema(
        tags=["OpenAI-compatible /v1"],
        summary="The assistants you may use, as models",
        operation_id="v1_models_list",
        responses={200: inline_serializer("OpenAIModelList", {
            "object": serializers.CharField(), "data": ModelSerializer(many=True)}), 401: ErrorSerializer},
    )
    def get(self, request):
        return JsonResponse({"object": "list", "data": [_model_entry(a) for a in _usable_assistants(request.user)]},
                            json_dumps_params={"ensure_ascii": False})


class ModelDetailView(OpenAIView):
    @extend_schema(tags=["OpenAI-compatible /v1"], summary="One model (assistant)", operation_id="v1_models_retrieve",
                   responses={200: ModelSerializer(), 404: ErrorSerializer})
    def get(self, request, model: str):
        return JsonResponse(_model_entry(_assistant(request.user, model)), json_dumps_params={"ensure_ascii": False})


def _assistant(user, model: Any):
    # A name the database cannot hold (a NUL, a lone surrogate) names no assistant.
    valid = isinstance(model, str) and storable(model)
    assistant = _usable_assistants(user).filter(name=model).first() if valid else None
    if assistant is None:
        # Shown escaped: a lone surrogate has no UTF-8 (the response could not be encoded).
        shown = str(model)[:200].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
        raise OpenAIError(404, _("The model “%(model)s” does not exist or you do not have access to it.")
                          % {"model": shown}, param="model", code="model_not_found")
    return assistant


def _text(content: Any, index: int) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise OpenAIError(400, _("Only text content is supported."), param=f"messages[{index}].content")
        return "\n".join(parts)
    raise OpenAIError(400, _("A message's content must be a string."), param=f"messages[{index}].content")


def parse_request(data: Any) -> dict:
    """Validate a chat completion request; OpenAIError (400) naming the parameter otherwise."""
    if not isinstance(data, dict):
        raise OpenAIError(400, _("The request body must be a JSON object."))
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError(400, _("“model” is required: one of the ids from GET /v1/models."), param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, _("“messages” must be a non-empty list."), param="messages")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or message["role"] not in ROLES:
            raise OpenAIError(400, _("Each message needs a role: user, assistant or system."), param=f"messages[{i}].role")
        text = _text(message.get("content"), i)
        if not storable(text):
            raise OpenAIError(400, unstorable_text_message(), param=f"messages[{i}].content")
        turns.append({"role": message["role"], "content": text})
    if turns[-1]["role"] != "user":
        raise OpenAIError(400, _("The last message must be the user's question."), param="messages")
    question = turns[-1]["content"]
    problem = validate_question(question)
    if problem:
        raise OpenAIError(400, problem, param="messages", code="invalid_question")
    n = data.get("n", 1)
    if n not in (1, None):
        raise OpenAIError(400, _("Only n=1 is supported."), param="n")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise OpenAIError(400, _("“stream” must be true or false."), param="stream")
    options = data.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    history = [t for t in turns[:-1] if t["role"] in ("user", "assistant") and t["content"].strip()]
    return {"model": model, "question": question, "history": history, "stream": stream, "include_usage": include_usage}


def _usage(done: DoneEvent) -> dict:
    prompt = int(done.usage.get("prompt_tokens", 0) or 0)
    completion = int(done.usage.get("completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _citations(request, done: DoneEvent) -> list[dict]:
    return [{**c, "url": request.build_absolute_uri(c["url"])} if c.get("url") else c for c in done.citations]


def _error_from_event(event: ErrorEvent) -> OpenAIError:
    if event.message_id is None:  # refused before anything was stored: the request was at fault
        return OpenAIError(400, event.message, param="messages")
    return OpenAIError(503 if event.retryable else 500, event.message, type="server_error",
                       code="model_unavailable" if event.retryable else None)


CompletionRequest = inline_serializer("ChatCompletionRequest", {
    "model": serializers.CharField(help_text="An assistant name from GET /v1/models."),
    "messages": serializers.ListField(child=serializers.DictField(), help_text="OpenAI chat messages; the last is the user's question."),
    "stream": serializers.BooleanField(required=False, default=False),
    "stream_options": serializers.DictField(required=False, help_text="{\"include_usage\": true} adds a usage chunk."),
})
CITATION_FIELDS = {
    "n": serializers.IntegerField(), "chunk_id": serializers.IntegerField(), "document_id": serializers.IntegerField(),
    "version_id": serializers.IntegerField(), "version_number": serializers.IntegerField(),
    "title": serializers.CharField(), "heading_path": serializers.ListField(child=serializers.CharField()),
    "char_start": serializers.IntegerField(), "char_end": serializers.IntegerField(),
    "text_sha256": serializers.CharField(), "supported": serializers.BooleanField(), "url": serializers.URLField(),
}
CompletionResponse = inline_serializer("ChatCompletion", {
    "id": serializers.CharField(), "object": serializers.CharField(), "created": serializers.IntegerField(),
    "model": serializers.CharField(),
    "choices": inline_serializer("ChatCompletionChoice", {
        "index": serializers.IntegerField(), "finish_reason": serializers.CharField(),
        "message": inline_serializer("ChatCompletionMessage", {
            "role": serializers.CharField(), "content": serializers.CharField(),
            "reasoning_content": serializers.CharField(allow_null=True, help_text="DeepSeek-R1 reasoning, if any."),
            "citations": inline_serializer("ChatCitation", CITATION_FIELDS, many=True,
                                           help_text="Extra field: the passages the answer cites."),
            "status": serializers.CharField(help_text="Extra field: done or no_knowledge."),
        }),
    }, many=True),
    "usage": inline_serializer("ChatCompletionUsage", {
        "prompt_tokens": serializers.IntegerField(), "completion_tokens": serializers.IntegerField(),
        "total_tokens": serializers.IntegerField()}),
})


class ChatCompletionsView(OpenAIView):
    @extend_schema(
        tags=["OpenAI-compatible /v1"],
        summary="Ask an assistant (OpenAI chat completions format)",
        operation_id="v1_chat_completions",
        description=__doc__,
        request=CompletionRequest,
        responses={
            200: OpenApiResponse(CompletionResponse, description="JSON, or with stream=true Server-Sent Events of "
                                 "chat.completion.chunk objects ending with `data: [DONE]`; the final chunk carries "
                                 "`citations`, `status` and `verified_content`."),
            400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer,
            429: OpenApiResponse(ErrorSerializer, description="Rate limit or quota; see Retry-After."),
        },
        parameters=[OpenApiParameter("Retry-After", location=OpenApiParameter.HEADER, response=[429], type=int,
                                     description="Seconds until the request would be admitted.")],
    )
    def post(self, request):
        try:
            data = loads_limited(request.body or b"null")  # depth-limited: a deeply nested body is a 400
        except RequestDataTooBig:
            raise
        except ParseError as exc:
            raise OpenAIError(400, str(exc.detail), code="invalid_json") from None
        params = parse_request(data)
        user = request.user
        assistant = _assistant(user, params["model"])
        try:
            limits.chat_request_admit(user=user)
        except limits.RateLimited as refusal:
            raise _refusal(refusal) from None
        events = answer_stream(user=user, assistant=assistant, question=params["question"],
                               history=params["history"], channel="api")
        first = next(events)
        if isinstance(first, ErrorEvent):
            events.close()
            raise _error_from_event(first)
        created = int(time.time())
        if params["stream"]:
            response = StreamingHttpResponse(
                _Stream(_sse(request, assistant.name, created, first, events, params["include_usage"]), events),
                content_type="text/event-stream; charset=utf-8",
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        return self._complete(request, assistant.name, created, first, events)

    def _complete(self, request, model, created, first, events: Iterator) -> HttpResponse:
        answer, reasoning, final = [], [], None
        try:
            for event in events:
                if isinstance(event, AnswerDelta):
                    answer.append(event.text)
                elif isinstance(event, ReasoningDelta):
                    reasoning.append(event.text)
                elif isinstance(event, (DoneEvent, ErrorEvent)):
                    final = event
        finally:
            events.close()
        if not isinstance(final, DoneEvent):
            raise _error_from_event(final or ErrorEvent(_("Something went wrong while answering. You can try again."),
                                                        retryable=True, message_id=first.message_id))
        body = {
            "id": f"chatcmpl-{final.message_id}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": final.answer,
                    "reasoning_content": "".join(reasoning) or None,
                    "citations": _citations(request, final),
                    "status": final.status,
                },
                "finish_reason": "stop",
                "logprobs": None,
            }],
            "usage": _usage(final),
        }
        return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


class _Stream:
    """The SSE body; closing it (the response is done or the client went away, even before the
    first byte) closes the pipeline, which stores a partial answer as stopped, never "streaming"."""

    def __init__(self, frames: Iterator[bytes], events: Iterator):
        self.frames, self.events = frames, events

    def __iter__(self):
        return self.frames

    def close(self) -> None:
        self.frames.close()
        self.events.close()


def _sse(request, model: str, created: int, start, events: Iterator, include_usage: bool) -> Iterator[bytes]:
    """chat.completion.chunk events. Closing this generator (the client went away) closes the
    pipeline's, which stores the partial answer as stopped."""
    chunk_id = f"chatcmpl-{start.message_id}"

    def frame(payload: dict) -> bytes:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> bytes:
        return frame({"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
                      **extra})

    try:
        yield chunk({"role": "assistant", "content": ""})
        for event in events:
            if isinstance(event, AnswerDelta):
                yield chunk({"content": event.text})
            elif isinstance(event, ReasoningDelta):
                yield chunk({"reasoning_content": event.text})
            elif isinstance(event, DoneEvent):
                citations = _citations(request, event)
                yield chunk({"citations": citations}, "stop", citations=citations, status=event.status,
                            verified_content=event.answer)
                if include_usage:
                    yield frame({"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                                 "model": model, "choices": [], "usage": _usage(event)})
                yield b"data: [DONE]\n\n"
                return
            elif isinstance(event, ErrorEvent):
                yield frame(_error_from_event(event).body())
                return
    finally:
        events.close()
