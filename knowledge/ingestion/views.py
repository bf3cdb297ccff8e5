"""Ingestion pages: the status partial of a version (polled by htmx), retry, the chunk viewer,
uploads into a knowledge base and the embedding model page."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.policy import is_company_admin
from core.audit import client_ip

from .. import embedding
from .. import selectors as knowledge_selectors
from ..models import DocumentState
from ..policy import knowledge_base_policy
from . import selectors, services, uploads
from .forms import UploadForm

CHUNKS_PER_PAGE = 50


def _status_context(request, version) -> dict:
    return {
        "version": version,
        "can_edit": selectors.can_change_document(user=request.user, version=version),
    }


def ingestion_status(request, pk):
    version = selectors.version_for_ingestion(user=request.user, pk=pk)
    return render(request, "knowledge/ingest/_status.html", _status_context(request, version))


@require_POST
def ingestion_retry(request, pk):
    version = selectors.version_for_ingestion(user=request.user, pk=pk)
    try:
        services.version_ingest_retry(actor=request.user, version=version, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    if request.htmx:
        return render(request, "knowledge/ingest/_status.html", _status_context(request, version))
    return redirect("knowledge:document", pk=version.document_id)


def chunk_list(request, pk):
    version = selectors.version_for_ingestion(user=request.user, pk=pk)
    document = version.document
    return render(
        request,
        "knowledge/ingest/chunks.html",
        {
            "version": version,
            "document": document,
            "knowledge_base": document.knowledge_base,
            "ingestion": selectors.ingestion_for(version=version),
            # A 5 MB file makes thousands of chunks: one page at a time.
            "chunks": Paginator(selectors.chunk_list(user=request.user, version=version), CHUNKS_PER_PAGE).get_page(
                request.GET.get("page")
            ),
        },
    )


def upload(request, kb_pk):
    knowledge_base = knowledge_selectors.knowledge_base_get(user=request.user, pk=kb_pk)
    if not knowledge_base_policy.user_has_permission_for_instance(request.user, "change", knowledge_base):
        raise PermissionDenied
    documents = knowledge_selectors.document_list(
        user=request.user, knowledge_base=knowledge_base, order="title"
    ).exclude(state=DocumentState.ARCHIVED)
    form = UploadForm(request.POST or None, request.FILES or None, documents=documents)
    outcomes = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                outcomes = uploads.upload_files(
                    actor=request.user,
                    knowledge_base=knowledge_base,
                    files=form.cleaned_data["files"],
                    document=form.cleaned_data["document"],
                    change_note=form.cleaned_data["change_note"],
                    ip=client_ip(request),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
        if outcomes is None:
            status = 400
    context = {
        "knowledge_base": knowledge_base,
        "form": form,
        "outcomes": outcomes,
        "limit_mb": round(settings.UPLOAD_MAX_BYTES / (1024 * 1024), 1),
    }
    return render(request, "knowledge/ingest/upload.html", context, status=status)


def embedding_model(request):
    """Company admins: the embedding spaces, and re-embedding when the configured model changed."""
    if not is_company_admin(request.user):
        raise PermissionDenied
    job = None
    if request.method == "POST":
        try:
            job = services.embedding_space_rebuild_start(actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Re-embedding started. Searches use the current model until it is complete."))
    if job is None:
        job = selectors.embedding_rebuild_latest(kind=services.REBUILD_JOB_KIND)
    context = {
        "spaces": selectors.embedding_spaces(),
        "configured_path": selectors.configured_model_path(),
        "model_status": embedding.model_status(),
        "changed": selectors.embedding_model_changed(),
        "job": job,
    }
    return render(request, "knowledge/ingest/embedding.html", context)
