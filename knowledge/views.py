"""Knowledge pages: server-rendered, htmx where it saves a round trip.

Every read goes through `selectors` with the acting user (hidden == missing == 404) and every
write through `services`, which authorize again and write the audit entries.
"""

from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from accounts.models import Department
from accounts.selectors import navigation_for
from core.audit import client_ip

from . import selectors, services
from .diff import diff_texts, render_inline_html, render_side_by_side_html
from .forms import (
    AUDIT_ACTION_LABELS,
    PAGE_SIZES,
    ArchiveForm,
    ComplianceFilterForm,
    DocumentCreateForm,
    DocumentEditForm,
    DocumentFilterForm,
    DocumentMetadataForm,
    KnowledgeBaseForm,
    RestoreForm,
    ReviewDecisionForm,
)
from .models import DocumentState, ReviewState
from .policy import audit_entry_policy, knowledge_base_policy, request_knowledge_access, review_policy
from .ingestion.selectors import version_text
from .rendering import render_markdown

# Pages that show document text also forbid inline script, as a second wall behind the sanitizer.
# The one inline handler allowed is base.html's language switch (`this.form.submit()`).
DIFF_CONTEXT_LINES = 3
COMPLIANCE_PAGE_SIZE = 50
PRINT_LIMIT = 5000  # a printable page beyond this is better served by the CSV export
MY_REVIEWS_SHOWN = 100
LIST_PAGE_SIZE = 50  # knowledge bases, versions, the review inbox


def unchanged_lines_label(count: int) -> str:
    return ngettext("%(count)s unchanged line", "%(count)s unchanged lines", count) % {"count": count}


def _form_error(form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form (field errors when the field exists)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _require_knowledge_nav(request) -> None:
    if not navigation_for(user=request.user).knowledge:
        raise PermissionDenied


# --- knowledge bases ---------------------------------------------------------------------------


def _index_context(request, form=None):
    user = request.user
    editable = knowledge_base_policy.departments_user_may_add_in(user)
    can_add = knowledge_base_policy.user_has_permission(user, "add")
    return {
        "knowledge_bases": Paginator(selectors.knowledge_base_list(user=user), LIST_PAGE_SIZE).get_page(
            request.GET.get("page")
        ),
        "can_add": can_add,
        "form": form
        or (KnowledgeBaseForm(departments=editable, all_departments=Department.objects.all()) if can_add else None),
        "can_review_anywhere": navigation_for(user=user).compliance,
        "can_follow_reviews": review_policy.user_has_permission(user, "view"),
    }


def index(request):
    _require_knowledge_nav(request)
    return render(request, "knowledge/index.html", _index_context(request))


@require_POST
def knowledge_base_create(request):
    editable = knowledge_base_policy.departments_user_may_add_in(request.user)
    if not editable.exists():
        raise PermissionDenied
    form = KnowledgeBaseForm(request.POST, departments=editable, all_departments=Department.objects.all())
    if form.is_valid():
        try:
            knowledge_base = services.knowledge_base_create(
                actor=request.user, ip=client_ip(request), **form.cleaned_data
            )
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("Knowledge base “%(name)s” was created.") % {"name": knowledge_base.name})
            return redirect("knowledge:knowledge_base", pk=knowledge_base.pk)
    return render(request, "knowledge/index.html", _index_context(request, form=form), status=400)


def knowledge_base_detail(request, pk):
    """The documents of one knowledge base: search by title, tag and state, sorted, paginated."""
    knowledge_base = selectors.knowledge_base_get(user=request.user, pk=pk)
    filters = DocumentFilterForm(request.GET or None)
    params = filters.cleaned_data if filters.is_valid() else {}
    order = params.get("order") or "-updated_at"
    per_page = params.get("per_page") or PAGE_SIZES[0]
    documents = selectors.document_list(
        user=request.user,
        knowledge_base=knowledge_base,
        q=params.get("q", ""),
        tag=params.get("tag", ""),
        state=params.get("state", ""),
        order=order,
    )
    page = Paginator(documents, per_page).get_page(request.GET.get("page"))
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    context = {
        "knowledge_base": knowledge_base,
        "filters": filters if filters.is_bound else DocumentFilterForm(),
        "page": page,
        "query": urlencode(query),
        "can_edit": knowledge_base_policy.user_has_permission_for_instance(request.user, "change", knowledge_base),
        "states": DocumentState,
    }
    if request.htmx and request.htmx.target == "document-table":
        return render(request, "knowledge/_document_table.html", context)
    return render(request, "knowledge/knowledge_base.html", context)


# --- documents ---------------------------------------------------------------------------------


def document_create(request, kb_pk):
    knowledge_base = selectors.knowledge_base_get(user=request.user, pk=kb_pk)
    if not knowledge_base_policy.user_has_permission_for_instance(request.user, "change", knowledge_base):
        raise PermissionDenied
    form = DocumentCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            document = services.document_create(
                actor=request.user,
                knowledge_base=knowledge_base,
                title=data["title"],
                content=data["content"],
                tags=data["tags"],
                review_by=data["review_by"],
                change_note=data["change_note"],
                original_file=data["file"] or None,
                ip=client_ip(request),
            )
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The document was created as a draft (v1)."))
            return redirect("knowledge:document", pk=document.pk)
    status = 400 if request.method == "POST" else 200
    context = {"knowledge_base": knowledge_base, "form": form}
    return render(request, "knowledge/document_create.html", context, status=status)


def _lock_context(request, document):
    access = request_knowledge_access(request)
    lock = access.edit_lock(document)  # None for readers: who edits is not theirs to know
    others = lock is not None and lock.owner_id != request.user.pk
    return {
        "lock": lock,
        "lock_is_mine": lock is not None and lock.owner_id == request.user.pk,
        "lock_expired": lock is not None and lock.is_expired,
        "can_break_lock": others and not lock.is_expired and access.may_break_lock(document),
        "can_take_over_lock": others and lock.is_expired and access.may_take_over_lock(document),
        "heartbeat_seconds": django_settings.EDIT_LOCK_HEARTBEAT_SECONDS,
    }


def _document_context(request, document, **extra):
    access = request_knowledge_access(request)
    context = {
        "document": document,
        "knowledge_base": document.knowledge_base,
        "can_edit": access.may_edit(document),
        "can_restore": access.may_restore(document),
        "can_review": access.may_review(document),
        "sees_drafts": access.sees_drafts(document),
        "states": DocumentState,
        **_lock_context(request, document),
    }
    context.update(extra)
    return context


def document_detail(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    context = _document_context(request, document)
    live = document.live_version
    # Readers are shown the live version, editors and reviewers the latest one.
    shown = request_knowledge_access(request).latest_version(document)
    if shown is None:
        raise Http404
    open_review = None
    if context["sees_drafts"]:
        open_review = selectors.open_review_for(user=request.user, document=document)
    context.update(
        shown=shown,
        shown_is_live=live is not None and shown.pk == live.pk,
        rendered=render_markdown(version_text(shown)),
        open_review=open_review,
        restore_form=RestoreForm() if context["can_restore"] else None,
        metadata_form=DocumentMetadataForm(
            initial={"title": document.title, "tags": document.tags, "review_by": document.review_by}
        )
        if context["can_edit"]
        else None,
    )
    return render(request, "knowledge/document.html", context)


@require_POST
def document_metadata(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    form = DocumentMetadataForm(request.POST)
    if form.is_valid():
        try:
            services.document_update_metadata(
                actor=request.user, document=document, ip=client_ip(request), **form.cleaned_data
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The document details were saved."))
    else:
        messages.error(request, _("The document details were not saved: check the fields."))
    return redirect("knowledge:document", pk=document.pk)


def _editor_context(request, document, form, **extra):
    return _document_context(request, document, form=form, **extra)


def document_edit(request, pk):
    """The Markdown editor. Opening it takes the edit lock; saving sends the version it started from."""
    document = selectors.document_get(user=request.user, pk=pk)
    if not request_knowledge_access(request).may_edit(document):
        raise PermissionDenied
    if request.method == "POST":
        return _document_save(request, document)
    latest = document.latest_version
    locked_by_other = None
    try:
        services.edit_lock_acquire(actor=request.user, document=document, ip=client_ip(request))
    except services.EditLocked as exc:
        locked_by_other = exc.lock
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("knowledge:document", pk=document.pk)
    document = selectors.document_get(user=request.user, pk=pk)  # with the fresh lock
    form = DocumentEditForm(initial={"base_version": latest.number, "content": version_text(latest)})
    return render(
        request,
        "knowledge/editor.html",
        _editor_context(request, document, form, base=latest, locked_by_other=locked_by_other),
    )


def _document_save(request, document):
    form = DocumentEditForm(request.POST, request.FILES)
    submit = request.POST.get("action") == "submit"
    if form.is_valid():
        data = form.cleaned_data
        try:
            version = services.document_version_create(
                actor=request.user,
                document=document,
                content=data["content"],
                base_version_number=data["base_version"],
                change_note=data["change_note"],
                original_file=data["file"] or None,
                ip=client_ip(request),
            )
        except services.VersionConflict as exc:
            return _conflict(request, document, exc, data)
        except services.EditLocked as exc:
            form.add_error(
                None,
                _("%(user)s is editing this document; your text was not saved.") % {"user": exc.lock.owner},
            )
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            services.edit_lock_release(actor=request.user, document=document)
            if not submit:
                messages.success(request, _("Version %(number)s was saved as a draft.") % {"number": version.number})
                return redirect("knowledge:document", pk=document.pk)
            # the version is saved whatever happens to the submission
            try:
                review = services.document_submit(actor=request.user, document=document, ip=client_ip(request))
            except ValidationError as exc:
                messages.warning(
                    request,
                    _("Version %(number)s was saved as a draft but not submitted: %(reason)s")
                    % {"number": version.number, "reason": " ".join(exc.messages)},
                )
            else:
                if review is None:
                    message = _("Version %(number)s was saved and published.")
                else:
                    message = _("Version %(number)s was saved and sent for review.")
                messages.success(request, message % {"number": version.number})
            return redirect("knowledge:document", pk=document.pk)
    base_number = form.cleaned_data.get("base_version") if hasattr(form, "cleaned_data") else None
    base = document.latest_version
    if base_number:
        try:
            base = selectors.version_get(user=request.user, document=document, number=base_number)
        except Http404:
            pass
    return render(request, "knowledge/editor.html", _editor_context(request, document, form, base=base), status=400)


def _conflict(request, document, exc, data):
    """Someone saved a newer version meanwhile: show both texts and their diff; nothing is lost."""
    latest = exc.latest
    mine = data["content"]
    diff = diff_texts(version_text(latest), mine, context=DIFF_CONTEXT_LINES)
    form = DocumentEditForm(
        initial={"base_version": latest.number, "content": mine, "change_note": data.get("change_note", "")}
    )
    context = _editor_context(
        request,
        document,
        form,
        latest=latest,
        based_on=data["base_version"],
        mine=mine,
        diff=diff,
        diff_side=render_side_by_side_html(
            diff, old_label=_("Latest: v%(number)s") % {"number": latest.number}, new_label=_("Your text"),
            skip_label=unchanged_lines_label,
        ),
        diff_inline=render_inline_html(diff),
    )
    return render(request, "knowledge/conflict.html", context, status=409)


@require_POST
def preview(request):
    """Live preview for the editor (htmx): the same sanitized rendering as the document page."""
    _require_knowledge_nav(request)
    return render(request, "knowledge/_preview.html", {"rendered": render_markdown(request.POST.get("content", ""))})


@require_POST
def document_submit(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    try:
        review = services.document_submit(actor=request.user, document=document, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if review is None:
            messages.success(request, _("The document was published (this knowledge base needs no review)."))
        else:
            messages.success(request, _("The document was sent for review."))
    return redirect("knowledge:document", pk=document.pk)


def document_archive(request, pk):
    """GET: the confirmation page (a published document needs a reason); POST: archive."""
    document = selectors.document_get(user=request.user, pk=pk)
    if not request_knowledge_access(request).may_edit(document):
        raise PermissionDenied
    form = ArchiveForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.document_archive(
                actor=request.user, document=document, reason=form.cleaned_data["reason"], ip=client_ip(request)
            )
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The document was archived."))
            return redirect("knowledge:document", pk=document.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "knowledge/archive_confirm.html", _document_context(request, document, form=form), status=status
    )


@require_POST
def document_restore(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    form = RestoreForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        review = services.document_restore(actor=request.user, document=document, reason=reason, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if review is None:
            messages.success(request, _("The document was restored and is published again."))
        else:
            messages.success(request, _("The document was restored and sent for review: it is published once approved."))
    return redirect("knowledge:document", pk=document.pk)


@require_POST
def document_rollback(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    try:
        to_number = int(request.POST.get("to_number", ""))
    except ValueError:
        raise Http404 from None
    selectors.version_get(user=request.user, document=document, number=to_number)  # 404 when hidden
    try:
        version = services.document_rollback(
            actor=request.user, document=document, to_number=to_number, ip=client_ip(request)
        )
    except services.EditLocked as exc:
        messages.error(request, _("%(user)s is editing this document.") % {"user": exc.lock.owner})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Version %(number)s restores the text of v%(old)s.") % {"number": version.number, "old": to_number},
        )
    return redirect("knowledge:history", pk=document.pk)


# --- edit locks ---------------------------------------------------------------------------------


def edit_lock_status(request, pk):
    """The lock banner (htmx polls it on the document and editor pages)."""
    document = selectors.document_get(user=request.user, pk=pk)
    return render(request, "knowledge/_lock.html", _document_context(request, document))


@require_POST
def edit_lock_release(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    services.edit_lock_release(actor=request.user, document=document)
    return redirect("knowledge:document", pk=document.pk)


@require_POST
def edit_lock_break(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    services.edit_lock_break(actor=request.user, document=document, ip=client_ip(request))
    messages.success(request, _("The edit lock was removed."))
    return redirect("knowledge:document", pk=document.pk)


@require_POST
def edit_lock_heartbeat(request, pk):
    """The open editor keeps its lock alive (htmx, every EDIT_LOCK_HEARTBEAT_SECONDS); answers the banner."""
    document = selectors.document_get(user=request.user, pk=pk)
    try:
        services.edit_lock_heartbeat(actor=request.user, document=document, ip=client_ip(request))
    except (services.EditLocked, ValidationError):
        pass  # someone else holds it now, or the document was archived: the banner says so
    document = selectors.document_get(user=request.user, pk=pk)
    return render(request, "knowledge/_lock.html", _document_context(request, document, heartbeat=True))


@require_POST
def edit_lock_take_over(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    try:
        services.edit_lock_take_over(actor=request.user, document=document, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("knowledge:document", pk=document.pk)
    messages.success(request, _("You took over the edit lock."))
    return redirect("knowledge:document_edit", pk=document.pk)


# --- history, versions, diffs -------------------------------------------------------------------


def history(request, pk):
    document = selectors.document_get(user=request.user, pk=pk)
    page = Paginator(selectors.version_list(user=request.user, document=document), LIST_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    versions = list(page)
    reviews_by_version: dict[int, list] = {}
    if request_knowledge_access(request).sees_drafts(document):
        reviews = selectors.review_list(user=request.user, document=document).filter(version__in=[v.pk for v in versions])
        for review in reviews.order_by("created_at", "id"):
            reviews_by_version.setdefault(review.version_id, []).append(review)
    for version in versions:
        version.review_list = reviews_by_version.get(version.pk, [])
    context = _document_context(request, document, versions=versions, page=page)
    if len(versions) >= 2:
        context.update(default_a=versions[1].number, default_b=versions[0].number)
    return render(request, "knowledge/history.html", context)


def version_detail(request, pk, number):
    document = selectors.document_get(user=request.user, pk=pk)
    version = selectors.version_get(user=request.user, document=document, number=number)
    return render(
        request,
        "knowledge/version.html",
        _document_context(request, document, version=version, rendered=render_markdown(version_text(version))),
    )


def version_file(request, pk, number):
    document = selectors.document_get(user=request.user, pk=pk)
    version = selectors.version_get(user=request.user, document=document, number=number)
    handle = services.version_file_open(actor=request.user, version=version, ip=client_ip(request))
    return FileResponse(
        handle, as_attachment=True, filename=version.file_name or f"v{version.number}", content_type=version.file_mime
    )


def diff(request, pk):
    """Compare any two versions, side by side or inline, with word-level highlights."""
    document = selectors.document_get(user=request.user, pk=pk)
    # one authorized queryset for both versions and the version picker (the policy filter is costly to build)
    versions = selectors.version_list(user=request.user, document=document)
    numbers = list(versions.values_list("number", flat=True))  # newest first; readers see the live one only
    if not numbers:
        raise Http404
    try:
        b_number = int(request.GET.get("b") or numbers[0])
        a_number = int(request.GET.get("a") or next((n for n in numbers if n < b_number), b_number))
    except ValueError:
        raise Http404 from None
    pair = {v.number: v for v in versions.filter(number__in=[a_number, b_number])}
    if a_number not in pair or b_number not in pair:
        raise Http404
    a, b = pair[a_number], pair[b_number]
    view = "inline" if request.GET.get("view") == "inline" else "side"
    full = request.GET.get("full") == "1"
    result = diff_texts(version_text(a), version_text(b), context=None if full else DIFF_CONTEXT_LINES)
    labels = {
        "old_label": _("v%(number)s by %(author)s") % {"number": a.number, "author": a.author},
        "new_label": _("v%(number)s by %(author)s") % {"number": b.number, "author": b.author},
        "skip_label": unchanged_lines_label,
    }
    rendered = render_inline_html(result) if view == "inline" else render_side_by_side_html(result, **labels)
    open_review = None
    if request_knowledge_access(request).may_review(document):
        open_review = selectors.review_inbox(user=request.user).filter(document=document).first()
    context = _document_context(
        request,
        document,
        a=a,
        b=b,
        view=view,
        full=full,
        diff=result,
        rendered_diff=rendered,
        numbers=numbers,
        open_review=open_review,
    )
    if request.htmx and request.htmx.target == "diff-body":
        return render(request, "knowledge/_diff_body.html", context)
    return render(request, "knowledge/diff.html", context)


# --- reviews ------------------------------------------------------------------------------------


MY_REVIEW_STATES = (ReviewState.OPEN, ReviewState.CHANGES_REQUESTED, ReviewState.APPROVED)


def review_inbox(request):
    """Reviewers: what waits for their decision. Editors: their own submissions, by outcome."""
    user = request.user
    if not review_policy.user_has_permission(user, "view"):
        raise PermissionDenied
    may_decide = review_policy.user_has_permission(user, "review")
    mine = list(selectors.my_review_list(user=user).filter(state__in=MY_REVIEW_STATES)[:MY_REVIEWS_SHOWN])
    my_groups = [
        (state, label, [review for review in mine if review.state == state])
        for state, label in (
            (ReviewState.OPEN, _("In review")),
            (ReviewState.CHANGES_REQUESTED, _("Changes requested")),
            (ReviewState.APPROVED, _("Approved")),
        )
    ]
    context = {
        "may_decide": may_decide,
        "reviews": Paginator(selectors.review_inbox(user=user), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
        if may_decide
        else [],
        "my_groups": my_groups,
        "has_mine": bool(mine),
    }
    return render(request, "knowledge/review_inbox.html", context)


def _review_context(request, review, form=None):
    document = review.document
    version = review.version
    base = document.live_version if document.live_version_id and document.live_version_id != version.pk else None
    if base is None and version.parent_id:
        base = version.parent
    result = diff_texts(version_text(base) if base else "", version_text(version), context=DIFF_CONTEXT_LINES)
    return _document_context(
        request,
        document,
        review=review,
        version=version,
        base=base,
        form=form or ReviewDecisionForm(),
        can_decide=review.is_open and review_policy.user_has_permission_for_instance(request.user, "review", review),
        rendered=render_markdown(version_text(version)),
        rendered_diff=render_side_by_side_html(
            result,
            old_label=_("v%(number)s") % {"number": base.number} if base else _("(empty)"),
            new_label=_("v%(number)s (to review)") % {"number": version.number},
            skip_label=unchanged_lines_label,
        ),
    )


def review_detail(request, pk):
    review = selectors.review_get(user=request.user, pk=pk)
    return render(request, "knowledge/review.html", _review_context(request, review))


@require_POST
def review_decide(request, pk, decision):
    review = selectors.review_get(user=request.user, pk=pk)
    form = ReviewDecisionForm(request.POST)
    if form.is_valid():
        comment = form.cleaned_data["comment"]
        try:
            if decision == "approve":
                services.review_approve(actor=request.user, review=review, comment=comment, ip=client_ip(request))
                messages.success(request, _("Approved: v%(number)s is live.") % {"number": review.version.number})
            else:
                services.review_request_changes(
                    actor=request.user, review=review, comment=comment, ip=client_ip(request)
                )
                messages.success(request, _("Changes were requested."))
        except ValidationError as exc:
            _form_error(form, exc)
        else:
            return redirect("knowledge:review_inbox")
    return render(request, "knowledge/review.html", _review_context(request, review, form=form), status=400)


# --- compliance ----------------------------------------------------------------------------------


def _compliance_filters(request):
    reviewed = audit_entry_policy.compliance_departments(request.user)
    if not reviewed.exists():
        raise Http404  # audit rows are for reviewers: to everyone else they do not exist
    form = ComplianceFilterForm(request.GET or None, departments=reviewed)
    params = form.cleaned_data if form.is_valid() else {}
    filters = {
        "date_from": params.get("date_from"),
        "date_to": params.get("date_to"),
        "author": params.get("author") or None,
        "department": params.get("department"),
        "action": params.get("action") or None,
    }
    document = None
    if request.GET.get("document"):
        try:
            document = selectors.document_get(user=request.user, pk=int(request.GET["document"]))
        except ValueError:
            raise Http404 from None
    rows = selectors.compliance_audit_list(user=request.user, document=document, **filters)
    return form if form.is_bound else ComplianceFilterForm(departments=reviewed), rows, document


def compliance(request):
    form, rows, document = _compliance_filters(request)
    page = Paginator(rows, COMPLIANCE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(
        request,
        "knowledge/compliance.html",
        {"form": form, "page": page, "rows": list(_annotate(page)), "query": query, "document": document},
    )


def compliance_print(request):
    form, rows, document = _compliance_filters(request)
    return render(
        request,
        "knowledge/compliance_print.html",
        {
            "form": form,
            "rows": list(_annotate(rows[:PRINT_LIMIT])),
            "truncated": rows[PRINT_LIMIT : PRINT_LIMIT + 1].exists(),
            "print_limit": PRINT_LIMIT,
            "document": document,
            "printed_at": timezone.now(),
        },
    )


class _Echo:
    def write(self, value):
        return value


CSV_COLUMNS = [
    "audit_id", "timestamp", "action", "action_label", "actor", "ip", "department", "object_type", "object_id",
    "object", "knowledge_base", "document_id", "document", "version", "version_author", "change_note",
    "content_sha256", "file_name", "file_sha256", "summary", "details",
]  # fmt: skip

# Details worth a glance in the table (the CSV carries them all), with their labels.
SUMMARY_KEYS = {
    "reason": gettext_lazy("reason"), "comment": gettext_lazy("comment"), "change_note": gettext_lazy("change note"),
    "title": gettext_lazy("title"), "lock_owner": gettext_lazy("lock holder"),
    "shared_with": gettext_lazy("shared with"), "shared_company_wide": gettext_lazy("company-wide"),
    "changed": gettext_lazy("changed"), "user": gettext_lazy("user"), "role": gettext_lazy("role"),
    "previous_role": gettext_lazy("previous role"), "username": gettext_lazy("username"),
    "file_name": gettext_lazy("file"), "four_eyes_rule": gettext_lazy("four-eyes rule"),
    "rolled_back_to": gettext_lazy("rolled back to"), "trigger": gettext_lazy("trigger"),
    "previous_state": gettext_lazy("previous state"),
}


def action_label(action: str) -> str:
    return str(AUDIT_ACTION_LABELS.get(action, action))


def audit_summary(entry) -> str:
    """One line of what the row's details say, for the table and the printable page."""
    parts = []
    for key, label in SUMMARY_KEYS.items():
        value = entry.details.get(key)
        if value in (None, "", [], {}):
            continue
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{label}: {value}")
    text = " · ".join(parts)
    return text if len(text) <= 300 else text[:299] + "…"


def _annotate(rows):
    for entry in rows:
        entry.action_label = action_label(entry.action)
        entry.summary = audit_summary(entry)
        yield entry


def _csv_row(entry) -> list:
    version = entry.version
    document = version.document if version is not None else None
    cells = [
        entry.pk,
        entry.created_at.isoformat(),
        entry.action,
        action_label(entry.action),
        entry.actor_username,
        entry.ip or "",
        entry.department.code if entry.department else "",
        entry.content_type.model if entry.content_type_id else "",
        entry.object_id,
        entry.object_repr,
        document.knowledge_base.name if document else "",
        document.pk if document else "",
        document.title if document else "",
        version.number if version else "",
        version.author.get_username() if version else "",
        version.change_note if version else "",
        version.content_sha256 if version else "",
        version.file_name if version else "",
        version.file_sha256 if version else "",
        audit_summary(entry),  # readable, in the reader's language; the details stay whole as JSON
        json.dumps(entry.details, ensure_ascii=False, sort_keys=True),
    ]
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    return ["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in cells]


def compliance_csv(request):
    _form, rows, _document = _compliance_filters(request)
    writer = csv.writer(_Echo())

    def stream():
        yield "\ufeff"  # Excel opens UTF-8 (Chinese titles) only with a BOM
        yield writer.writerow(CSV_COLUMNS)
        for version in rows.iterator(chunk_size=500):
            yield writer.writerow(_csv_row(version))

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="knowledge-audit-{stamp}.csv"'
    return response
