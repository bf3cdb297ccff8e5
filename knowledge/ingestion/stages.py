"""The stages of ingesting document versions: claim → extract → clean → chunk → embed → write.

Called only by `services.versions_ingest_run`. Each stage reports through the version's
VersionIngestion row (core's "ingestion" kind: heartbeats and failures go through core.services'
`work_*` functions). The write stage puts a version's chunks, vectors and BM25 postings in ONE
transaction after deleting any earlier chunks of that version, so a retried, redelivered or killed
run never leaves partial or duplicate chunks. Only chunks of a document's live (published) version
are searchable; `sync_searchable` keeps the flags right.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.services import work_claim, work_fail, work_heartbeat, work_owned
from retrieval.indexing import index_chunks, searchable_changed
from retrieval.tokenize import language

from .. import embedding
from ..signals import searchable_chunks_changed
from ..models import (
    Chunk,
    ChunkVector,
    Document,
    DocumentState,
    DocumentVersion,
    EmbeddingSpace,
    EmbeddingSpaceStatus,
    IngestionStatus,
    VersionIngestion,
)
from . import sql
from .blocks import ExtractedDocument
from .chunk import chunk_blocks
from .clean import clean_document
from .detect import declared_kind, detect
from .entities import extract_entities
from .errors import IngestionError
from .extract import extract, extract_archive, parse_markdown, parse_plain_text
from .selectors import is_file_version

logger = logging.getLogger(__name__)

WORK_KIND = "ingestion"  # core background work, registered in knowledge/apps.py
RUNNING = (IngestionStatus.EXTRACTING, IngestionStatus.CHUNKING, IngestionStatus.EMBEDDING)
FINISHED = (IngestionStatus.INDEXED, IngestionStatus.FAILED)
# Chunk texts encoded per call: large enough for length-sorted batches, small enough to heartbeat.
ENCODE_SLICE = 1024
ENCODE_BATCH = 64

# Share of the progress bar at the start of each stage.
PROGRESS = {"extract": 0.0, "chunk": 0.1, "embed": 0.2, "index": 0.9}

UNEXPECTED_MESSAGE = _("Ingestion failed unexpectedly: {error}")


@dataclass
class Work:
    row: VersionIngestion
    version: DocumentVersion
    timings: dict = field(default_factory=dict)
    extracted: Any = None
    chunks: list = field(default_factory=list)
    entities: list = field(default_factory=list)
    vectors: dict = field(default_factory=dict)  # space id -> ndarray
    failed: bool = False


def claim_many(version_ids: list[int]) -> list[Work]:
    """Take the versions for this worker, except finished ones and those another live worker has.
    One transaction and a constant number of queries for the whole batch."""
    version_ids = list(dict.fromkeys(version_ids))
    with transaction.atomic():
        existing = set(DocumentVersion.objects.filter(pk__in=version_ids).values_list("pk", flat=True))
        have_rows = set(
            VersionIngestion.objects.filter(version_id__in=existing).values_list("version_id", flat=True)
        )
        VersionIngestion.objects.bulk_create(
            [VersionIngestion(version_id=vid) for vid in existing - have_rows], ignore_conflicts=True
        )
        row_ids = dict(VersionIngestion.objects.filter(version_id__in=existing).values_list("version_id", "pk"))
        claimed = work_claim(
            kind=WORK_KIND, pks=[row_ids[vid] for vid in version_ids if vid in row_ids],
            progress=0.0, error_code="", stage_timings={},
        )
    versions = DocumentVersion.objects.select_related("document__knowledge_base").in_bulk(
        [row.version_id for row in claimed]
    )
    return [Work(row=row, version=versions[row.version_id]) for row in claimed]


# Per-version stage updates inside a large batch are throttled to this interval: the rows still
# show live progress, without one UPDATE per version and stage.
_BEAT_INTERVAL_S = 1.0
_last_beat = 0.0


def beat(
    works: list[Work], *, status: str | None = None, progress: float | None = None, throttle: bool = False
) -> None:
    """Heartbeat (and stage/progress) for rows this worker still owns."""
    global _last_beat
    if throttle:
        if status is not None:
            for work in works:
                work.row.status = status
        if time.monotonic() - _last_beat < _BEAT_INTERVAL_S:
            return
    _last_beat = time.monotonic()
    fields: dict[str, Any] = {}
    if status is not None:
        fields["status"] = status
    if progress is not None:
        fields["progress"] = progress
    # Rows this worker still owns: same claim (worker + attempt), not reaped meanwhile.
    work_heartbeat(kind=WORK_KIND, rows=[work.row for work in works], **fields)


def prepare(work: Work, space: EmbeddingSpace, *, throttle: bool = False) -> None:
    """Extract, clean and chunk one version (status extracting, then chunking)."""
    try:
        started = time.monotonic()
        work.extracted = extract_version(work.version)
        work.timings["extract"] = round(time.monotonic() - started, 4)
        beat([work], status=IngestionStatus.CHUNKING, progress=PROGRESS["chunk"], throttle=throttle)
        started = time.monotonic()
        chunk_settings = work.version.document.knowledge_base.chunk_settings or {}
        work.chunks = chunk_blocks(
            work.extracted.blocks,
            count_tokens=embedding.token_counter(space.model_path),
            chunk_tokens=int(chunk_settings.get("chunk_tokens", 256)),
            overlap_tokens=int(chunk_settings.get("overlap_tokens", 32)),
        )
        if not work.chunks:
            raise IngestionError("empty", name=_source_name(work.version))
        work.entities = [extract_entities(chunk.text) for chunk in work.chunks]
        work.timings["chunk"] = round(time.monotonic() - started, 4)
        beat([work], status=IngestionStatus.EMBEDDING, progress=PROGRESS["embed"], throttle=throttle)
    except Exception as exc:  # noqa: BLE001 - every failure ends on the row
        fail(work, exc)


def _source_name(version: DocumentVersion) -> str:
    return version.file_name or version.document.title


def extract_version(version: DocumentVersion):
    if is_file_version(version):
        name = version.file_name or Path(version.original_file.name).name
        with version.original_file.open("rb") as handle:
            data = handle.read()
        limit = settings.UPLOAD_MAX_BYTES
        if len(data) <= limit and data.strip() and detect(data, name) == "zip":
            # An archive is unpacked at upload; one stored as a version is refused, a bomb as a bomb.
            extract_archive(data, name, max_bytes=limit, max_uncompressed_bytes=4 * limit)
            raise IngestionError("unsupported_type", name=name)
        document = extract(data, name, max_bytes=limit, max_uncompressed_bytes=4 * limit)
    else:
        # An uploaded .txt keeps its text as the content; it is read as plain text, not Markdown.
        plain = bool(version.original_file) and declared_kind(version.file_name or "") == "text"
        blocks = parse_plain_text(version.content) if plain else parse_markdown(version.content)
        if not any(block.text.strip() for block in blocks):
            raise IngestionError("empty", name=_source_name(version))
        document = ExtractedDocument(
            markdown=version.content, blocks=blocks, meta={"format": "text" if plain else "markdown"}
        )
    # Cleaning is for the chunks only: the version's content stays as the user wrote or uploaded it.
    return clean_document(document)


def spaces_to_fill() -> list[EmbeddingSpace]:
    """The active space, and any space being built by a re-embedding."""
    return list(
        EmbeddingSpace.objects.filter(status__in=[EmbeddingSpaceStatus.ACTIVE, EmbeddingSpaceStatus.BUILDING])
        .order_by("-status", "pk")  # "building" < "active": the active one first
    )


def embed(works: list[Work]) -> None:
    """Encode every chunk of every version in a few large calls, heartbeating between them."""
    started = time.monotonic()
    texts = [chunk.text for work in works for chunk in work.chunks]
    spaces = spaces_to_fill()
    total = max(1, len(texts) * len(spaces))
    done = 0
    for space in spaces:
        parts = []
        for start in range(0, len(texts), ENCODE_SLICE):
            part = texts[start : start + ENCODE_SLICE]
            parts.append(embedding.encode(space.model_path, part, batch_size=ENCODE_BATCH))
            done += len(parts[-1])
            share = PROGRESS["embed"] + (PROGRESS["index"] - PROGRESS["embed"]) * done / total
            beat(works, progress=round(share, 4))
        matrix = np.concatenate(parts) if parts else np.zeros((0, space.dimension), dtype=np.float32)
        offset = 0
        for work in works:
            work.vectors[space.pk] = matrix[offset : offset + len(work.chunks)]
            offset += len(work.chunks)
    elapsed = time.monotonic() - started
    for work in works:
        # Shared encode time, attributed by each version's share of the chunks.
        work.timings["embed"] = round(elapsed * len(work.chunks) / max(1, len(texts)), 4)
    beat(works, progress=PROGRESS["index"])


def write(works: list[Work]) -> None:
    """The index stage: chunks + vectors + BM25 postings of these versions in one transaction."""
    started = time.monotonic()
    with transaction.atomic():
        document_ids = sorted({work.version.document_id for work in works})
        # Same lock order as the knowledge services (document rows), so publish and index serialize.
        list(Document.objects.select_for_update().filter(pk__in=document_ids).order_by("pk").values_list("pk"))
        owned = work_owned([work.row for work in works])
        mine = set(
            VersionIngestion.objects.select_for_update().filter(owned, status__in=RUNNING).values_list("pk", flat=True)
        )
        works = [work for work in works if work.row.pk in mine]  # a reaped-and-retaken run writes nothing
        if not works:
            return
        spaces = sql.lock_spaces_for_write()
        for space in spaces:
            missing = [work for work in works if space.pk not in work.vectors]
            if missing:  # a space created after the embed stage (rare)
                texts = [chunk.text for work in missing for chunk in work.chunks]
                matrix = embedding.encode(space.model_path, texts, batch_size=ENCODE_BATCH)
                offset = 0
                for work in missing:
                    work.vectors[space.pk] = matrix[offset : offset + len(work.chunks)]
                    offset += len(work.chunks)
        version_ids = [work.version.pk for work in works]
        old = Chunk.objects.filter(version_id__in=version_ids)
        old_searchable = list(old.filter(searchable=True).values_list("pk", flat=True))
        if old_searchable:
            searchable_changed(added=[], removed=old_searchable)
        old.delete()
        rows = []
        for work in works:
            version = work.version
            for chunk, entities in zip(work.chunks, work.entities, strict=True):
                rows.append(
                    Chunk(
                        version_id=version.pk,
                        document_id=version.document_id,
                        knowledge_base_id=version.document.knowledge_base_id,
                        index=chunk.index,
                        text=chunk.text,
                        token_count=chunk.token_count,
                        heading_path=[part[:500] for part in chunk.heading_path],
                        position=chunk.position,
                        entities=entities,
                        language=language(chunk.text),
                    )
                )
        created = Chunk.objects.bulk_create(rows, batch_size=2000)
        sql.insert_vectors(works, created, spaces)
        index_chunks(chunk_ids=[chunk.pk for chunk in created])
        now = timezone.now()
        elapsed = time.monotonic() - started
        total = max(1, len(created))
        updated = []
        for work in works:
            row = work.row
            row.status = IngestionStatus.INDEXED
            row.progress = 1.0
            row.chunk_count = len(work.chunks)
            row.finished_at = row.heartbeat_at = now
            row.stage_timings = {**work.timings, "index": round(elapsed * len(work.chunks) / total, 4)}
            if is_file_version(work.version):
                row.extracted_text = work.extracted.markdown
            row.extracted_meta = work.extracted.meta
            updated.append(row)
        sql.finish_rows(updated, now=now)
        sync_searchable(document_ids)


def fail(work: Work, exc: BaseException) -> None:
    if isinstance(exc, IngestionError):
        code, message = exc.code, str(exc.message)
    else:
        logger.exception("Ingestion of version %s failed", work.version.pk, exc_info=exc)
        code, message = "internal_error", str(UNEXPECTED_MESSAGE).format(error=f"{type(exc).__name__}: {exc}")
    work.failed = True
    work_fail(kind=WORK_KIND, row=work.row, error=message, error_code=code[:64], stage_timings=work.timings)


def sync_searchable(document_ids: list[int]) -> None:
    documents = list(Document.objects.filter(pk__in=document_ids).values_list("pk", "state", "live_version_id"))
    live_ids = [live for _pk, _state, live in documents if live is not None]
    indexed = set(
        VersionIngestion.objects.filter(version_id__in=live_ids, status=IngestionStatus.INDEXED).values_list(
            "version_id", flat=True
        )
    )
    targets: list[int] = []  # versions whose chunks are searchable
    settled: list[int] = []  # documents whose searchable set is decided now
    for pk, state, live in documents:
        if state == DocumentState.ARCHIVED or live is None:
            settled.append(pk)
        elif live in indexed:
            settled.append(pk)
            targets.append(live)
        # else: the live version is not indexed yet (or failed): the previous chunks stay searchable
    if not settled:
        return
    added = list(Chunk.objects.filter(version_id__in=targets, searchable=False).values_list("pk", flat=True))
    removed = list(
        Chunk.objects.filter(document_id__in=settled, searchable=True)
        .exclude(version_id__in=targets)
        .values_list("pk", flat=True)
    )
    if added:
        Chunk.objects.filter(pk__in=added).update(searchable=True)
        ChunkVector.objects.filter(chunk_id__in=added).update(searchable=True)
    if removed:
        Chunk.objects.filter(pk__in=removed).update(searchable=False)
        ChunkVector.objects.filter(chunk_id__in=removed).update(searchable=False)
    if added or removed:
        searchable_changed(added=added, removed=removed)
        searchable_chunks_changed.send(sender=Chunk, added=added, removed=removed)

