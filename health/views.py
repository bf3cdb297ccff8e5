"""Knowledge health pages: the overview, conflicts, changes not carried over."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.audit import client_ip
from knowledge.selectors import managed_knowledge_bases

from . import selectors, services
from .forms import DismissForm, GapDraftForm, KnowledgeBaseHealthForm
from .models import FindingStatus
from .policy import user_may_watch


def _require_watcher(request) -> None:
    if not user_may_watch(request.user):
        raise PermissionDenied


def _status(request) -> str:
    status = request.GET.get("status", FindingStatus.OPEN)
    return status if status in FindingStatus.values else FindingStatus.OPEN


def index(request):
    _require_watcher(request)
    figures = selectors.overview(user=request.user)
    return render(request, "health/index.html", {"figures": figures, "trend": figures["trend"], "section": "overview"})


def conflicts(request):
    _require_watcher(request)
    status = _status(request)
    return render(request, "health/conflicts.html", {
        "rows": selectors.conflict_list(user=request.user, status=status), "status": status,
        "statuses": FindingStatus.choices, "form": DismissForm(), "section": "conflicts",
    })


def carry_overs(request):
    _require_watcher(request)
    status = _status(request)
    return render(request, "health/carry_overs.html", {
        "rows": selectors.carry_over_list(user=request.user, status=status), "status": status,
        "statuses": FindingStatus.choices, "form": DismissForm(), "section": "carry_overs",
    })


def _dismiss(request, *, getter, service, name, redirect_to):
    finding = getter(user=request.user, pk=request.resolver_match.kwargs["pk"])
    form = DismissForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why this is not a conflict."))
        return redirect(redirect_to)
    try:
        service(actor=request.user, **{name: finding}, reason=form.cleaned_data["reason"], ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Marked as not a conflict."))
    return redirect(redirect_to)


@require_POST
def conflict_dismiss(request, pk):
    _require_watcher(request)
    return _dismiss(request, getter=selectors.conflict_get, service=services.conflict_dismiss, name="conflict",
                    redirect_to="health:conflicts")


@require_POST
def carry_over_dismiss(request, pk):
    _require_watcher(request)
    return _dismiss(request, getter=selectors.carry_over_get, service=services.carry_over_dismiss, name="carry_over",
                    redirect_to="health:carry_overs")


@require_POST
def scan_start(request):
    _require_watcher(request)
    job = services.conflict_scan_start(actor=request.user)
    messages.success(request, _("The full conflict scan was queued."))
    return redirect("core:job_detail", job_id=job.pk)


def stale(request):
    _require_watcher(request)
    return render(request, "health/stale.html", {"rows": selectors.stale_list(user=request.user), "section": "stale"})


@require_POST
def mark_reviewed(request, pk):
    from knowledge.policy import document_policy

    _require_watcher(request)
    document = document_policy.instance_for_user(request.user, "view", pk)
    try:
        services.document_mark_reviewed(actor=request.user, document=document, note=request.POST.get("note", ""),
                                        ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Marked as reviewed."))
    return redirect("health:stale")


def notifications(request):
    if request.method == "POST":
        if request.POST.get("action") == "read":
            services.notifications_mark_read(user=request.user)
        else:
            services.notification_preferences_set(user=request.user, enabled_kinds=set(request.POST.getlist("kind")))
            messages.success(request, _("Your notification settings were saved."))
        return redirect("health:notifications")
    return render(request, "health/notifications.html", {
        "rows": selectors.notification_list(user=request.user), "kinds": selectors.notification_kinds(user=request.user),
        "section": "notifications",
    })


def gaps(request):
    _require_watcher(request)
    knowledge_bases = managed_knowledge_bases(user=request.user)
    choices = list(knowledge_bases)  # one query for every group's select, not one per group
    rows = selectors.gap_group_list(user=request.user)
    forms = []
    for row in rows:
        form = GapDraftForm(knowledge_bases=knowledge_bases, initial={"title": row.examples[0] if row.examples else ""},
                            prefix=f"g{row.group.pk}")
        form.fields["knowledge_base"].choices = [(kb.pk, str(kb)) for kb in choices]
        forms.append((row, form))
    return render(request, "health/gaps.html", {"rows": forms, "section": "gaps", "may_draft": bool(choices)})


@require_POST
def gap_scan_start(request):
    _require_watcher(request)
    job = services.gap_scan_start(actor=request.user)
    messages.success(request, _("The grouping of unanswered questions was queued."))
    return redirect("core:job_detail", job_id=job.pk)


@require_POST
def gap_draft(request, pk):
    _require_watcher(request)
    group = selectors.gap_group_get(user=request.user, pk=pk)
    form = GapDraftForm(request.POST, knowledge_bases=managed_knowledge_bases(user=request.user), prefix=f"g{group.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose a knowledge base you manage and a title."))
        return redirect("health:gaps")
    try:
        document = services.gap_group_draft_create(actor=request.user, group=group, title=form.cleaned_data["title"],
                                                   knowledge_base=form.cleaned_data["knowledge_base"], ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("health:gaps")
    messages.success(request, _("A draft was created from these questions."))
    return redirect("knowledge:document", document.pk)


def unretrieved(request):
    _require_watcher(request)
    return render(request, "health/unretrieved.html", {
        "rows": selectors.unretrieved_documents(user=request.user), "days": selectors.unretrieved_days(), "section": "unretrieved",
    })


def knowledge_base_settings(request, pk):
    """A knowledge base's health settings (linked from the knowledge base page, for its editors)."""
    from knowledge.policy import knowledge_base_policy

    knowledge_base = knowledge_base_policy.instance_for_user(request.user, "change", pk)
    form = KnowledgeBaseHealthForm(request.POST or None, initial={
        "source_failure_days": selectors.source_failure_days(knowledge_base=knowledge_base)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.knowledge_base_health_update(actor=request.user, knowledge_base=knowledge_base, ip=client_ip(request),
                                                      source_failure_days=form.cleaned_data["source_failure_days"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The health settings were saved."))
                return redirect("health:knowledge_base_settings", pk=knowledge_base.pk)
        status = 400
    return render(request, "health/knowledge_base_settings.html", {"knowledge_base": knowledge_base, "form": form}, status=status)
