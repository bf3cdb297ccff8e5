"""Reads for the ingestion pages: each takes the acting user and authorizes through the policies;
a hidden version answers 404 exactly like a missing one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Chunk, DocumentVersion, EmbeddingSpace, VersionIngestion
from .policy import document_policy, version_policy


def version_for_ingestion(*, user: Any, pk: Any) -> DocumentVersion:
    """A version the user may read, with its document and knowledge base (Http404 otherwise)."""
    version = version_policy.instance_for_user(user, "view", pk)
    return DocumentVersion.objects.select_related("document__knowledge_base", "author").get(pk=version.pk)


def ingestion_for(*, version: DocumentVersion) -> VersionIngestion | None:
    return VersionIngestion.objects.filter(version=version).first()


def chunk_list(*, user: Any, version: DocumentVersion) -> QuerySet[Chunk]:
    readable = version_policy.instances_user_has_permission_for(user, "view").filter(pk=version.pk)
    return Chunk.objects.filter(version__in=readable).order_by("index")


def can_change_document(*, user: Any, version: DocumentVersion) -> bool:
    return document_policy.user_has_permission_for_instance(user, "change", version.document)


def embedding_spaces() -> QuerySet[EmbeddingSpace]:
    return EmbeddingSpace.objects.order_by("-created_at")
