"""Every write of ingestion, per document version: queue, retry, run (extract → clean → chunk →
embed → index, in `stages`), the searchable flags of a document's chunks, and re-embedding when the
configured model changes.

The VersionIngestion row is the truth (status, progress, per-stage timings, heartbeat); the
document page, the reaper and retries read it. It is a kind of core's background work
("ingestion", registered in knowledge/apps.py): queueing, claiming, heartbeats, failing and the
reaper are core.services' `work_*` functions.

Several versions can run as one batch (`versions_ingest_run`): their chunk texts are encoded
together, which is what keeps bulk imports close to bare encode throughput.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext

from accounts.policy import is_company_admin
from core.audit import audit_log
from core.models import Job, JobStatus
from core.services import job_create, job_progress, work_enqueue

from .. import embedding
from ..models import (
    Chunk,
    ChunkVector,
    Document,
    DocumentVersion,
    EmbeddingSpace,
    EmbeddingSpaceStatus,
    IngestionStatus,
    VersionIngestion,
)
from ..policy import document_policy
from . import sql, stages
from .selectors import configured_model_path

logger = logging.getLogger(__name__)

AUDIT_INGEST_RETRY = "ingest_retry"
AUDIT_EMBEDDING_REBUILD = "embedding_rebuild"
REBUILD_JOB_KIND = "embedding_space_build"

# A worker that takes one version also takes other queued ones, up to this many and this much
# source text: their chunks are encoded together, which keeps the embedding model busy with full,
# length-sorted batches during bulk imports.
INGEST_BATCH = 256
INGEST_BATCH_BYTES = 32 * 1024 * 1024


# --- queueing and retry -------------------------------------------------------------------------


def version_ingest_enqueue(*, version: DocumentVersion) -> VersionIngestion:
    """Create or reset the version's ingestion row to queued, in the caller's transaction (the
    version's own): the task is sent once it commits, and a row the broker never got is sent by
    core's reaper. A broker outage never breaks the save."""
    row = VersionIngestion.objects.filter(version=version).first() or VersionIngestion(version=version)
    return work_enqueue(
        kind=stages.WORK_KIND, row=row, error_code="", stage_timings={}, progress=0.0,
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
    works = stages.claim_many(version_ids)
    if not works:
        return []
    space = embedding.active_space()
    for work in works:
        # Per-version stage updates are throttled only in batches; a single version shows each stage.
        stages.prepare(work, space, throttle=len(works) > 1)
    ready = [work for work in works if not work.failed]
    if not ready:
        return []
    if len(works) > 1:
        stages.beat(ready, status=IngestionStatus.EMBEDDING, progress=stages.PROGRESS["embed"])
    try:
        stages.embed(ready)
    except Exception as exc:  # noqa: BLE001 - the rows record every failure
        for work in ready:
            stages.fail(work, exc)
        return []
    try:
        stages.write(ready)
    except Exception as exc:  # noqa: BLE001
        if len(ready) == 1:
            stages.fail(ready[0], exc)
            return []
        logger.warning("Batch write failed (%s); writing versions one by one", exc)
        done = []
        for work in ready:
            try:
                stages.write([work])
                done.append(work)
            except Exception as single:  # noqa: BLE001
                stages.fail(work, single)
        return [work.version.pk for work in done]
    return [work.version.pk for work in ready]


# --- searchable flags -----------------------------------------------------------------------------


def live_chunks_sync(*, document: Document) -> None:
    """Searchable chunks are those of the live version once it is indexed; until then the
    previously searchable ones stay; an archived or unpublished document has none."""
    stages.sync_searchable([document.pk])


# --- re-embedding when the configured model changes -----------------------------------------------


@transaction.atomic
def embedding_space_rebuild_start(*, actor: Any, model_path: str | None = None):
    """Build a space for the configured model in the background (company admins). Searches keep
    using the active space until the new one has a vector for every chunk. Returns the Job."""
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


def embedding_space_build(*, job: Job) -> dict:
    """Encode every chunk into the new space, batch by batch, then activate it in one step."""
    space = EmbeddingSpace.objects.get(pk=job.params["space_id"])
    if space.status != EmbeddingSpaceStatus.BUILDING:
        return {"space_id": space.pk, "status": space.status}
    done = 0
    try:
        while True:
            missing = Chunk.objects.exclude(vectors__space=space)
            total = done + missing.count()
            columns = ("pk", "text", "knowledge_base_id", "searchable")
            batch = list(missing.order_by("pk").values_list(*columns)[: stages.ENCODE_SLICE])
            if not batch:
                if embedding_space_activate(space=space):
                    break
                continue
            matrix = embedding.encode(
                space.model_path, [text for _pk, text, _kb, _s in batch], batch_size=stages.ENCODE_BATCH
            )
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
    sql.vectors_searchable_copy(space=space)
    sql.constraints_set(deferred=False)
    embedding.ensure_hnsw_index(space)
    sql.constraints_set(deferred=True)
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
            sql.hnsw_index_drop(space=space)
    return deleted
