"""Small builders: published documents with searchable chunks, vectors and BM25 postings, written
directly (the pipeline has its own tests); vectors come from the packaged embedding model."""

from __future__ import annotations

import numpy as np

from knowledge.embedding import active_space, encode_for_space
from knowledge.models import Chunk, ChunkVector, Document, DocumentState, DocumentVersion, sha256_text
from retrieval.indexing import index_chunks, searchable_changed
from retrieval.tokenize import language


def published(kb, owner, title: str, texts: list[str], *, tags=(), searchable: bool = True, vectors=None):
    document = Document.objects.create(
        knowledge_base=kb, title=title, owner=owner, state=DocumentState.PUBLISHED, tags=list(tags)
    )
    version = DocumentVersion.objects.create(
        document=document, number=1, content="\n\n".join(texts), author=owner, content_sha256=sha256_text("")
    )
    Document.objects.filter(pk=document.pk).update(latest_version=version, live_version=version)
    chunks = Chunk.objects.bulk_create(
        [
            Chunk(version=version, document=document, knowledge_base=kb, index=i, text=text,
                  token_count=len(text.split()), searchable=searchable, language=language(text))
            for i, text in enumerate(texts)
        ]
    )
    space = active_space()
    matrix = encode_for_space(space, texts) if vectors is None else np.asarray(vectors, dtype=np.float32)
    ChunkVector.objects.bulk_create(
        [
            ChunkVector(space=space, chunk=chunk, knowledge_base=kb, searchable=searchable, embedding=vector.tolist())
            for chunk, vector in zip(chunks, matrix, strict=True)
        ]
    )
    index_chunks(chunk_ids=[c.pk for c in chunks])
    document.refresh_from_db()
    return document, chunks


def set_searchable(chunks, value: bool) -> None:
    ids = [c.pk for c in chunks]
    Chunk.objects.filter(pk__in=ids).update(searchable=value)
    ChunkVector.objects.filter(chunk_id__in=ids).update(searchable=value)
    searchable_changed(added=ids if value else [], removed=[] if value else ids)
