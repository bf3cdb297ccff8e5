"""Source pages: the sources of a knowledge base, create/edit, sync now, sync history, and the
HTTP host allowlist. Only the managers of the owning department reach them; others get 404."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.audit import client_ip

from . import selectors, services
from .forms import AllowedHostForm, SourceForm
from .models import SourceKind
from .policy import allowed_host_policy


def _form_error(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def source_list(request, kb_pk):
    knowledge_base = selectors.managed_knowledge_base_get(user=request.user, pk=kb_pk)
    context = {"knowledge_base": knowledge_base, "sources": selectors.source_list(user=request.user, knowledge_base=knowledge_base)}
    return render(request, "sources/source_list.html", context)


def source_create(request, kb_pk, kind):
    knowledge_base = selectors.managed_knowledge_base_get(user=request.user, pk=kb_pk)
    if kind not in SourceKind.values:
        raise Http404
    form = SourceForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            source = services.source_create(
                actor=request.user, knowledge_base=knowledge_base, kind=kind, ip=client_ip(request),
                **form.service_fields(),
            )
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("Source “%(name)s” was created.") % {"name": source.name})
            return redirect("sources:detail", pk=source.pk)
    context = {"knowledge_base": knowledge_base, "form": form, "kind": SourceKind(kind)}
    return render(request, "sources/source_form.html", context, status=400 if request.method == "POST" else 200)


def source_edit(request, pk):
    source = selectors.source_get(user=request.user, pk=pk)
    form = SourceForm(request.POST or None, instance=source, kind=source.kind)
    if request.method == "POST" and form.is_valid():
        try:
            services.source_update(actor=request.user, source=source, ip=client_ip(request), **form.service_fields())
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The source was saved."))
            return redirect("sources:detail", pk=source.pk)
    context = {"knowledge_base": source.knowledge_base, "form": form, "kind": SourceKind(source.kind), "source": source}
    return render(request, "sources/source_form.html", context, status=400 if request.method == "POST" else 200)


def source_detail(request, pk):
    source = selectors.source_get(user=request.user, pk=pk)
    syncs = selectors.sync_list(user=request.user, source=source)
    context = {"source": source, "knowledge_base": source.knowledge_base, "syncs": syncs,
               "records": source.records.count(), "runner_may_sync": services.source_runner_may_sync(source)}
    if request.htmx and request.htmx.target == "sync-history":
        return render(request, "sources/_sync_history.html", context)
    return render(request, "sources/source_detail.html", context)


@require_POST
def source_sync(request, pk):
    source = selectors.source_get(user=request.user, pk=pk)
    services.source_sync_request(actor=request.user, source=source)
    messages.success(request, _("A sync was queued."))
    return redirect("sources:detail", pk=source.pk)


@require_POST
def source_run_as_me(request, pk):
    source = selectors.source_get(user=request.user, pk=pk)
    services.source_run_as(actor=request.user, source=source, ip=client_ip(request))
    messages.success(request, _("The source's syncs now run as you."))
    return redirect("sources:detail", pk=source.pk)


@require_POST
def source_delete(request, pk):
    source = selectors.source_get(user=request.user, pk=pk)
    knowledge_base_pk = source.knowledge_base_id
    services.source_delete(actor=request.user, source=source, ip=client_ip(request))
    messages.success(request, _("The source was deleted; its documents were kept."))
    return redirect("sources:list", kb_pk=knowledge_base_pk)


def _require_allowlist_admin(request) -> None:
    if not allowed_host_policy.user_has_permission(request.user, "view"):
        raise Http404


def allowed_hosts(request):
    _require_allowlist_admin(request)
    form = AllowedHostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.allowed_host_create(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("“%(host)s” was added to the allowlist.") % {"host": entry.host})
            return redirect("sources:allowed_hosts")
    context = {"hosts": selectors.allowed_host_list(user=request.user), "form": form}
    return render(request, "sources/allowed_hosts.html", context, status=400 if request.method == "POST" else 200)


@require_POST
def allowed_host_delete(request, pk):
    _require_allowlist_admin(request)
    entry = allowed_host_policy.instance_for_user(request.user, "delete", pk)
    services.allowed_host_delete(actor=request.user, entry=entry, ip=client_ip(request))
    messages.success(request, _("“%(host)s” was removed from the allowlist.") % {"host": entry.host})
    return redirect("sources:allowed_hosts")
