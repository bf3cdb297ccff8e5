"""Ingestion: everything that turns an upload or a saved version into searchable chunks.

Pure library (no database, no Django models; importable on its own):
    blocks, archive, detect, extract, clean, chunk, entities, errors, title

    document = extract(data, filename, max_bytes=..., max_uncompressed_bytes=...)
    document = clean_document(document)
    chunks = chunk_blocks(document.blocks, count_tokens=tokenizer_counter(model_dir), chunk_tokens=256)
    entities = [extract_entities(chunk.text) for chunk in chunks]

Django side, one job per file (see README "How it is built"):
    selectors   reads: a version's text, its ingestion row and chunks, the embedding spaces
    services    writes: queue, retry, run a batch of versions, searchable flags, re-embedding
    stages      the stages services run: claim, extract/clean/chunk, embed, write (index)
    sql         the raw SQL of those stages (COPY, UPDATE ... FROM unnest, locks on spaces)
    tasks       the Celery task and the re-embedding job handler (thin: ids in, a service called)
    uploads     files and .zip archives into documents and versions, through knowledge.services
    forms, views, urls   the ingestion pages (status, retry, chunks, upload, embedding model)
    api, api_urls        multipart uploads through the API

This package's __init__ imports only the pure library.
"""

from .blocks import Block, ExtractedDocument, render_markdown
from .chunk import Chunk, chunk_blocks, tokenizer_counter
from .clean import clean_blocks, clean_document
from .detect import decode_text, detect
from .entities import extract_entities
from .errors import IngestionError
from .extract import extract, extract_archive

__all__ = [
    "Block",
    "Chunk",
    "ExtractedDocument",
    "IngestionError",
    "chunk_blocks",
    "clean_blocks",
    "clean_document",
    "decode_text",
    "detect",
    "extract",
    "extract_archive",
    "extract_entities",
    "render_markdown",
    "tokenizer_counter",
]
