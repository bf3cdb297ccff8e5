"""The raw SQL of ingestion, where the ORM is too slow or cannot say it: share locks on the
embedding spaces, one UPDATE ... FROM unnest for hundreds of finished rows, COPY for vectors, and
the statements that activate or retire an embedding space."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from django.db import connection

from ..models import Chunk, EmbeddingSpace, EmbeddingSpaceStatus, IngestionStatus, VersionIngestion


def lock_spaces_for_write() -> list[EmbeddingSpace]:
    """Share-lock the spaces to fill, so a re-embedding cannot activate its space while these
    chunks are being written without vectors in it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM knowledge_embeddingspace WHERE status IN (%s, %s) ORDER BY id FOR SHARE",
            [EmbeddingSpaceStatus.ACTIVE.value, EmbeddingSpaceStatus.BUILDING.value],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(EmbeddingSpace.objects.filter(pk__in=ids))


def finish_rows(rows: list[VersionIngestion], *, now) -> None:
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


def insert_vectors(works: list[Any], created: list[Chunk], spaces: list[EmbeddingSpace]) -> None:
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
    copy_rows("knowledge_chunkvector", ("space_id", "chunk_id", "knowledge_base_id", "searchable", "embedding"), lines)


def copy_rows(table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    buffer = io.StringIO("".join(lines))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if hasattr(raw, "copy"):  # psycopg 3
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                while data := buffer.read(1 << 20):
                    copy.write(data)
        else:  # psycopg2
            raw.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def vectors_searchable_copy(*, space: EmbeddingSpace) -> None:
    """Give a space's vectors the searchable flags of their chunks (before it is activated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunkvector v SET searchable = c.searchable FROM knowledge_chunk c "
            "WHERE v.chunk_id = c.id AND v.space_id = %s AND v.searchable <> c.searchable",
            [space.pk],
        )


def constraints_set(*, deferred: bool) -> None:
    """Deferred FK checks queued earlier in a transaction would block CREATE INDEX."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED" if deferred else "SET CONSTRAINTS ALL IMMEDIATE")


def hnsw_index_drop(*, space: EmbeddingSpace) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {space.hnsw_index_name}")
