"""Model-independent ingestion: bytes -> blocks -> clean blocks -> chunks (+ entities).

The Celery pipeline calls these pure functions per stage; nothing here touches the database.

    document = extract(data, filename, max_bytes=..., max_uncompressed_bytes=...)
    document = clean_document(document)
    chunks = chunk_blocks(document.blocks, count_tokens=tokenizer_counter(model_dir), chunk_tokens=256)
    entities = [extract_entities(chunk.text) for chunk in chunks]
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
