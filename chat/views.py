"""The chat page, its Server-Sent Events stream, citations, feedback and the admin pages for
assistants and model endpoints."""

from __future__ import annotations

import json
import threading

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch
from django.http import Http404, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import limits
from accounts.policy import is_admin
from knowledge.policy import document_policy, knowledge_base_policy, version_policy

from . import selectors, services
from .forms import AssistantForm, EndpointForm
from .models import Citation, MessageStatus, Role
from .pipeline import MAX_QUESTION_CHARS, answer_stream
from .policy import assistant_policy, endpoint_policy
from .rendering import answer_html


def _message_context(message) -> dict:
    citations = list(message.citations.all())
    cited = [c for c in citations if c.cited]
    return {
        "m": message,
        # Only markers of sources the reader may still open become links (the selector checked them).
        "html": answer_html(message.pk, message.content, {c.marker for c in cited if c.readable}),
        "cited": cited,
        "feedback": next(iter(message.feedback.all()), None),
    }


def index(request):
    services.endpoint_from_environment_ensure()
    services.messages_reap_stale()
    user = request.user
    assistants = list(selectors.assistant_list(user=user))
    conversation = None
    if request.GET.get("c"):
        conversation = selectors.conversation_get(user=user, pk=request.GET["c"])
    turns = []
    if conversation is not None:
        for message in selectors.conversation_messages(user=user, conversation=conversation):
            turns.append(_message_context(message) if message.role == Role.ASSISTANT else {"m": message})
    current_assistant = None
    if conversation is not None and conversation.assistant_id in {a.pk for a in assistants}:
        current_assistant = conversation.assistant
    elif assistants:
        current_assistant = assistants[0]
    return render(request, "chat/index.html", {
        "assistants": assistants,
        "current_assistant": current_assistant,
        "conversations": selectors.conversation_list(user=user),
        "conversation": conversation,
        "turns": turns,
        "show_timings": is_admin(user),
        "may_configure": assistant_policy.user_has_permission(user, "add"),
        "may_configure_endpoints": endpoint_policy.user_has_permission(user, "add"),
        "max_question_chars": MAX_QUESTION_CHARS,
    })


def _sse(event_type: str, data: dict) -> bytes:
    return f"event: {event_type}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


def _stream_response(request, *, assistant, question, conversation=None, regenerate=None):
    user = request.user
    admin = is_admin(user)
    stop_event = threading.Event()
    try:
        limits.chat_request_admit(user=user)
    except limits.RateLimited as refusal:
        # The page shows the error event's message, which says when to ask again.
        response = _error_stream(refusal.message)
        response.status_code = 429
        response["Retry-After"] = str(refusal.retry_after)
        return response

    def events():
        registered = None
        generator = answer_stream(user=user, assistant=assistant, question=question, conversation=conversation,
                                  regenerate=regenerate, stop_event=stop_event)
        try:
            for event in generator:
                data = event.to_dict()
                if event.type == "start":
                    registered = event.message_id
                    services.generation_register(registered, stop_event)
                    data["conversation_url"] = reverse("chat:index") + f"?c={event.conversation_id}"
                elif event.type == "done":  # the pipeline charged its usage, as it does however it ends
                    data["html"] = str(answer_html(event.message_id, event.answer, {c["n"] for c in event.citations}))
                    if not admin:
                        data.pop("timings", None)
                    data["status_label"] = str(MessageStatus(event.status).label)
                yield _sse(event.type, data)
        finally:
            # A closed tab closes this generator: the pipeline stores the partial answer as stopped.
            stop_event.set()
            generator.close()
            if registered is not None:
                services.generation_unregister(registered)

    response = StreamingHttpResponse(events(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@require_POST
def ask(request):
    user = request.user
    question = request.POST.get("question", "")
    try:
        assistant = selectors.assistant_get(user=user, pk=request.POST.get("assistant"))
    except Http404:
        return _error_stream(_("That assistant does not exist or is not available to you."))
    conversation = None
    if request.POST.get("conversation"):
        try:
            conversation = selectors.conversation_get(user=user, pk=request.POST["conversation"])
        except Http404:
            return _error_stream(_("That conversation does not exist."))
        if conversation.assistant_id != assistant.pk:
            services.conversation_set_assistant(conversation=conversation, assistant=assistant)
    return _stream_response(request, assistant=assistant, question=question, conversation=conversation)


def _error_stream(message: str):
    response = StreamingHttpResponse(iter([_sse("error", {"type": "error", "message": message, "retryable": False,
                                                          "message_id": None})]),
                                     content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@require_POST
def regenerate(request, message_id):
    message = selectors.message_get(user=request.user, pk=message_id)
    if message.role != Role.ASSISTANT:
        raise Http404
    try:
        assistant = selectors.assistant_get(user=request.user, pk=request.POST.get("assistant") or message.conversation.assistant_id)
    except Http404:
        return _error_stream(_("That assistant does not exist or is not available to you."))
    return _stream_response(request, assistant=assistant, question=message.question, regenerate=message)


@require_POST
def stop(request, message_id):
    message = selectors.message_get(user=request.user, pk=message_id)
    return JsonResponse({"stopped": services.generation_stop(message=message)})


@require_POST
def feedback(request, message_id):
    message = selectors.message_get(user=request.user, pk=message_id)
    if message.role != Role.ASSISTANT:
        raise Http404
    try:
        rating = int(request.POST.get("rating", "0"))
    except ValueError:
        rating = 0
    if rating not in (1, -1):
        return JsonResponse({"error": _("Choose thumbs up or thumbs down.")}, status=400)
    correction = request.POST.get("correction", "")
    if len(correction) > 20000:
        return JsonResponse({"error": _("The correction is too long.")}, status=400)
    saved = services.feedback_submit(user=request.user, message=message, rating=rating, correction=correction)
    return JsonResponse({"rating": saved.rating, "correction": saved.correction,
                         "message": _("Thank you: your feedback was saved.")})


def conversation_new(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return redirect("chat:index")


@require_POST
def conversation_rename(request, pk):
    conversation = selectors.conversation_get(user=request.user, pk=pk)
    title = request.POST.get("title", "").strip()
    if not title:
        flash.error(request, _("A title cannot be empty."))
    else:
        services.conversation_rename(conversation=conversation, title=title)
    return redirect(reverse("chat:index") + f"?c={conversation.pk}")


@require_POST
def conversation_delete(request, pk):
    conversation = selectors.conversation_get(user=request.user, pk=pk)
    services.conversation_delete(conversation=conversation)
    flash.success(request, _("The conversation was deleted."))
    return redirect("chat:index")


def citation(request, message_id, n):
    """The cited passage, highlighted, in the exact version that was cited: opened through the
    version policy every time (a reader who lost access gets 404, as for a missing one)."""
    message = selectors.message_get(user=request.user, pk=message_id)
    try:
        cite = message.citations.get(marker=n)
    except (Citation.DoesNotExist, ValueError):
        raise Http404 from None
    version = version_policy.instance_for_user(request.user, "view", cite.version_ref)
    from knowledge.ingestion.selectors import version_text

    text = version_text(version)
    start, end = cite.char_start, cite.char_end
    if not (0 <= start < end <= len(text)):
        start = end = 0
    document = version.document
    newer = None
    if document.live_version_id and document.live_version_id != version.pk and document_policy.user_has_permission_for_instance(
            request.user, "view", document):
        newer = document.live_version
    return render(request, "chat/citation.html", {
        "cite": cite, "version": version, "document": document, "newer": newer, "message": message,
        "before": text[:start], "passage": text[start:end], "after": text[end:],
        "intact": cite.chunk is not None and start < end,
    })


# --- configuration pages (admins, knowledge managers) -------------------------------------------


def assistant_admin(request, pk=None):
    user = request.user
    if not assistant_policy.user_has_permission(user, "add"):
        raise PermissionDenied
    assistant = assistant_policy.instance_for_user(user, "change", pk) if pk else None
    form = AssistantForm(request.POST or None, instance=assistant, user=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.assistant_save(
                actor=user, assistant=assistant, knowledge_bases=data["knowledge_bases"], departments=data["departments"],
                **{k: data[k] for k in ("name", "description", "system_prompt", "endpoint", "active")},
                retrieval_settings=form.retrieval_settings(),
            )
        except ValidationError as refusal:
            form.add_error(None, refusal)
        else:
            flash.success(request, _("The assistant was saved."))
            return redirect("chat:assistants")
    readable = knowledge_base_policy.instances_user_has_permission_for(user, "view").order_by("name")
    return render(request, "chat/assistants.html", {
        "form": form, "assistant": assistant,
        # Each one's knowledge bases: the names of those the reader may read, the count of all.
        "assistants": assistant_policy.instances_user_has_permission_for(user, "change")
        .annotate(knowledge_base_count=Count("knowledge_bases", distinct=True))
        .prefetch_related(Prefetch("knowledge_bases", queryset=readable, to_attr="readable_knowledge_bases")),
    })


def endpoint_admin(request, pk=None):
    user = request.user
    if not endpoint_policy.user_has_permission(user, "add"):
        raise PermissionDenied
    endpoint = endpoint_policy.instance_for_user(user, "change", pk) if pk else None
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        api_key = data.pop("api_key") or None
        if data.pop("clear_api_key", False):
            api_key = ""
        services.endpoint_save(actor=user, endpoint=endpoint, api_key=api_key, **data)
        flash.success(request, _("The model endpoint was saved."))
        return redirect("chat:endpoints")
    return render(request, "chat/endpoints.html", {
        "form": form, "endpoint": endpoint, "endpoints": endpoint_policy.instances_user_has_permission_for(user, "view"),
    })
