"""Knowledge bases, documents, their append-only versions, reviews and edit locks.

Workflows (edit, submit, approve, rollback, archive) live in `services.py`; reads that take the
acting user live in `selectors.py`; who may do what lives in `policy.py`.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField


def default_chunk_settings() -> dict:
    return {"chunk_tokens": 256, "overlap_tokens": 32}


class KnowledgeBase(models.Model):
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    department = models.ForeignKey(
        "accounts.Department", verbose_name=_("department"), on_delete=models.PROTECT, related_name="knowledge_bases"
    )
    # Read access for other departments; editing stays with the owning department.
    shared_with = models.ManyToManyField(
        "accounts.Department", verbose_name=_("shared with"), blank=True, related_name="shared_knowledge_bases"
    )
    shared_company_wide = models.BooleanField(_("shared company-wide"), default=False)
    review_required = models.BooleanField(_("publishing needs a review"), default=True)
    # Four eyes: who submitted (or wrote) a change may not approve it, unless they hold this role
    # in the owning department ("admin" also covers company admins). Empty: nobody may.
    self_approval_role = models.CharField(
        _("self-approval allowed for"), max_length=32, blank=True, default="",
        choices=[("admin", _("Admin")), ("knowledge_manager", _("Knowledge manager")),
                 ("compliance_reviewer", _("Compliance reviewer"))],
    )
    chunk_settings = models.JSONField(_("chunking settings"), default=default_chunk_settings, blank=True)
    retrieval_settings = models.JSONField(_("retrieval settings"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("knowledge base")
        verbose_name_plural = _("knowledge bases")
        constraints = [
            models.UniqueConstraint(fields=["department", "name"], name="knowledgebase_name_unique_per_department")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def shared_with_others(self) -> list:
        """The departments it is shared with, the owning one left out (it reads anyway)."""
        return [d for d in self.shared_with.all() if d.pk != self.department_id]


class DocumentState(models.TextChoices):
    # The state describes the latest version; a draft may still have an older live version.
    DRAFT = "draft", _("Draft")
    IN_REVIEW = "in_review", _("In review")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class Document(models.Model):
    knowledge_base = models.ForeignKey(
        KnowledgeBase, verbose_name=_("knowledge base"), on_delete=models.PROTECT, related_name="documents"
    )
    title = models.CharField(_("title"), max_length=300)
    tags = ArrayField(models.CharField(max_length=64), verbose_name=_("tags"), default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="owned_documents"
    )
    review_by = models.DateField(_("review by"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=DocumentState.choices, default=DocumentState.DRAFT)
    latest_version = models.ForeignKey(
        "DocumentVersion", verbose_name=_("latest version"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    live_version = models.ForeignKey(
        "DocumentVersion", verbose_name=_("live version"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        indexes = [
            models.Index(fields=["knowledge_base", "state"]),
            models.Index(fields=["-updated_at", "-id"], name="document_updated_idx"),
            GinIndex(fields=["tags"], name="document_tags_gin"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=DocumentState.values), name="document_state_valid")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.live_version_id is not None and self.state != DocumentState.ARCHIVED


def version_upload_to(version: DocumentVersion, filename: str) -> str:
    return f"knowledge/{version.document_id}/v{version.number}/{stored_file_name(filename)}"


def stored_file_name(filename: str, limit: int = 200) -> str:
    """The name on disk: a filesystem takes 255 bytes a name, so a longer one (a zip entry's, in
    UTF-8) is cut to `limit` bytes, its extension kept. `DocumentVersion.file_name` keeps the whole."""
    if len(filename.encode()) <= limit:
        return filename
    stem, dot, extension = filename.rpartition(".")
    if not dot or not stem or len(extension.encode()) > 16:
        stem, dot, extension = filename, "", ""
    room = limit - len((dot + extension).encode())
    return stem.encode()[:room].decode(errors="ignore") + dot + extension


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AppendOnlyError(Exception):
    """A version row was about to be changed or deleted through the ORM."""


class DocumentVersion(models.Model):
    """An immutable snapshot. The database refuses UPDATE and DELETE of these rows (trigger in
    migration 0002); only the `purge_versions` command may delete, and it audits itself."""

    document = models.ForeignKey(
        Document, verbose_name=_("document"), on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField(_("number"))
    parent = models.ForeignKey(
        "self", verbose_name=_("parent version"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content = models.TextField(_("content"), blank=True)
    original_file = models.FileField(
        _("original file"), upload_to=version_upload_to, null=True, blank=True, max_length=500
    )
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    file_sha256 = models.CharField(_("file SHA-256"), max_length=64, blank=True)
    file_size = models.BigIntegerField(_("file size"), null=True, blank=True)
    file_mime = models.CharField(_("file type"), max_length=100, blank=True)
    content_sha256 = models.CharField(_("content SHA-256"), max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), on_delete=models.PROTECT, related_name="+"
    )
    change_note = models.CharField(_("change note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["document_id", "-number"]
        verbose_name = _("document version")
        verbose_name_plural = _("document versions")
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="documentversion_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="documentversion_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Document versions are append-only.")
        self.content_sha256 = sha256_text(self.content)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Document versions are append-only.")

    @property
    def has_file(self) -> bool:
        return bool(self.original_file)


class VersionPublication(models.Model):
    """The durable record that a version went live, once, at `published_at`. Versions are
    immutable, so the fact lives beside them, append-only too (trigger in migration 0007); it
    stays when a later version replaces the live one, so readers keep opening every version that
    was ever published (the read rule in policy.py). Deleted only with its version (purge)."""

    version = models.OneToOneField(
        DocumentVersion, verbose_name=_("version"), on_delete=models.CASCADE, related_name="publication"
    )
    document = models.ForeignKey(
        Document, verbose_name=_("document"), on_delete=models.CASCADE, related_name="publications"
    )
    published_at = models.DateTimeField(_("published at"), default=timezone.now)

    class Meta:
        verbose_name = _("version publication")
        verbose_name_plural = _("version publications")
        indexes = [models.Index(fields=["document", "version"], name="publication_document_version")]

    def __str__(self) -> str:
        return f"{self.version} published {self.published_at:%Y-%m-%d %H:%M}"


class ReviewState(models.TextChoices):
    OPEN = "open", _("Open")
    APPROVED = "approved", _("Approved")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")
    CANCELLED = "cancelled", _("Cancelled")


class Review(models.Model):
    """A review request for one exact version of a document."""

    document = models.ForeignKey(Document, verbose_name=_("document"), on_delete=models.PROTECT, related_name="reviews")
    version = models.ForeignKey(
        DocumentVersion, verbose_name=_("version"), on_delete=models.PROTECT, related_name="reviews"
    )
    state = models.CharField(_("state"), max_length=24, choices=ReviewState.choices, default=ReviewState.OPEN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["document"], condition=models.Q(state="open"), name="review_one_open_per_document"
            ),
            models.CheckConstraint(condition=models.Q(state__in=ReviewState.values), name="review_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.document} v{self.version.number} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state == ReviewState.OPEN


class EditLock(models.Model):
    """An explicit 'I am editing this' marker, shown to editors with its owner and age. The open
    editor refreshes it (a heartbeat); one not refreshed for EDIT_LOCK_TTL_SECONDS has expired:
    it no longer blocks saves and another editor of the department may take it over."""

    document = models.OneToOneField(Document, on_delete=models.CASCADE, related_name="edit_lock")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    acquired_at = models.DateTimeField(default=timezone.now)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("edit lock")
        verbose_name_plural = _("edit locks")

    def __str__(self) -> str:
        return f"{self.document} · {self.owner}"

    @property
    def age(self):
        return timezone.now() - self.acquired_at

    @property
    def expires_at(self):
        return self.refreshed_at + timedelta(seconds=settings.EDIT_LOCK_TTL_SECONDS)

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at


# ---------------------------------------------------------------------------------------------
# Ingestion: pipeline state per version, chunks, embedding spaces and vectors (issue 4).
# ---------------------------------------------------------------------------------------------


class IngestionStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    EXTRACTING = "extracting", _("Extracting")
    CHUNKING = "chunking", _("Chunking")
    EMBEDDING = "embedding", _("Embedding")
    INDEXED = "indexed", _("Indexed")
    FAILED = "failed", _("Failed")


class VersionIngestion(models.Model):
    """Pipeline state of one document version. The version row is immutable, so its processing
    state lives here; the pipeline, the document page and the reaper read this row. Created in the
    version's own transaction; driven by core's background-work mechanism (kind "ingestion")."""

    version = models.OneToOneField(
        DocumentVersion, verbose_name=_("version"), on_delete=models.CASCADE, related_name="ingestion"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=IngestionStatus.choices, default=IngestionStatus.QUEUED
    )
    progress = models.FloatField(_("progress"), default=0.0)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    # Seconds per finished stage: {"extract": 0.4, "chunk": 0.1, "embed": 2.3, "index": 0.2}
    stage_timings = models.JSONField(_("stage timings"), default=dict, blank=True)
    chunk_count = models.PositiveIntegerField(_("chunk count"), default=0)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("heartbeat at"), null=True, blank=True)
    # When the task was handed to the broker (null: not yet, e.g. the broker was down at commit).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # The cleaned Markdown extracted from a file version (edited versions hold theirs in `content`).
    extracted_text = models.TextField(_("extracted text"), blank=True)
    # What the reader found: {"format": "pdf", "pages": 3} or {"format": "text", "encoding": "gbk"}.
    extracted_meta = models.JSONField(_("extraction details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("version ingestion")
        verbose_name_plural = _("version ingestions")
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="ingestion_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.version} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in {IngestionStatus.INDEXED, IngestionStatus.FAILED}

    @property
    def percent(self) -> int:
        return round(min(max(self.progress, 0.0), 1.0) * 100)


class Chunk(models.Model):
    """A piece of one document version's text. Chunks of superseded versions are kept (old chat
    citations still open) but only chunks of a document's live version are `searchable`.
    `knowledge_base` is copied from the document so that search filters by permission in SQL."""

    version = models.ForeignKey(DocumentVersion, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    heading_path = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    # Where the chunk comes from, for citations: {"page": 3} or {"sheet": "Q1", "row": 12}, plus "end".
    position = models.JSONField(default=dict, blank=True)
    entities = models.JSONField(default=list, blank=True)
    # "zh" (mostly Chinese ideographs, Traditional or Simplified) or "en" (anything else), by the same
    # rule as a query's (retrieval.tokenize.language): hybrid search weighs BM25 by whether a
    # candidate is in the question's language.
    language = models.CharField(max_length=8, blank=True, default="", db_default="")
    searchable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="chunk_version_index_unique")]
        indexes = [
            models.Index(fields=["knowledge_base"], condition=models.Q(searchable=True), name="chunk_searchable_kb"),
            models.Index(fields=["document", "searchable"], name="chunk_document_searchable"),
        ]

    def __str__(self) -> str:
        return f"{self.version} #{self.index}"


class EmbeddingSpaceStatus(models.TextChoices):
    BUILDING = "building", _("Building")
    ACTIVE = "active", _("Active")
    RETIRED = "retired", _("Retired")
    FAILED = "failed", _("Failed")


class EmbeddingSpace(models.Model):
    """One embedding model. Each space has its own vectors and its own HNSW index; searches use
    the single active space while a new one is built (re-embedding) in the background."""

    model_path = models.CharField(_("model directory"), max_length=500)
    model_name = models.CharField(_("model name"), max_length=200, blank=True)
    dimension = models.PositiveIntegerField(_("dimension"))
    status = models.CharField(
        _("status"), max_length=16, choices=EmbeddingSpaceStatus.choices, default=EmbeddingSpaceStatus.BUILDING
    )
    progress = models.FloatField(_("progress"), default=0.0)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("embedding space")
        verbose_name_plural = _("embedding spaces")
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="embeddingspace_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_name or self.model_path} ({self.dimension}d, {self.status})"

    @property
    def hnsw_index_name(self) -> str:
        return f"knowledge_chunkvector_hnsw_{self.pk}"


class ChunkVector(models.Model):
    """The embedding of one chunk in one space. `knowledge_base_id` and `searchable` are copied
    from the chunk so that the HNSW scan filters by permission on this table alone. The vector
    column has no fixed dimension; each space gets a partial expression index
    `USING hnsw ((embedding::vector(D)) vector_cosine_ops) WHERE space_id = S`."""

    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="vectors")
    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="vectors")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    searchable = models.BooleanField(default=False)
    embedding = VectorField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "chunk"], name="chunkvector_space_chunk_unique")]
        indexes = [
            # Counts and exact scans of the vectors a small department may see.
            models.Index(
                fields=["space", "knowledge_base"], condition=models.Q(searchable=True), name="chunkvector_visible"
            )
        ]

    def __str__(self) -> str:
        return f"{self.chunk} in space {self.space_id}"
