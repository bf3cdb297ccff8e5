"""Embedding models: loading from local directories only, encoding, and embedding spaces.

A space is one model (path + dimension). The active space serves searches; a new space is built
in the background when the configured model changes, then activated in one step.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import EmbeddingSpace, EmbeddingSpaceStatus

_models: dict[str, object] = {}
_lock = threading.Lock()


def load_model(model_path: str):
    """A SentenceTransformer loaded once per process from a local directory (never a hub id)."""
    path = str(Path(model_path).resolve())
    with _lock:
        if path not in _models:
            if not Path(path).is_dir():
                raise FileNotFoundError(f"Embedding model directory not found: {path}")
            from sentence_transformers import SentenceTransformer

            _models[path] = SentenceTransformer(path, device=_device(), local_files_only=True)
        return _models[path]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_dimension(model_path: str) -> int:
    model = load_model(model_path)
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode(model_path: str, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, model_dimension(model_path)), dtype=np.float32)
    model = load_model(model_path)
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return vectors.astype(np.float32, copy=False)


def ensure_hnsw_index(space: EmbeddingSpace) -> None:
    """The partial expression HNSW index (cosine) for one space's vectors."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {space.hnsw_index_name} ON knowledge_chunkvector "
            f"USING hnsw ((embedding::vector({int(space.dimension)})) vector_cosine_ops) "
            f"WHERE space_id = {int(space.pk)}"
        )


@transaction.atomic
def active_space() -> EmbeddingSpace:
    """The active space; on a fresh database, one for the configured model is created active."""
    space = EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).first()
    if space is not None:
        return space
    path = str(Path(settings.EMBEDDING_MODEL_PATH).resolve())
    space = EmbeddingSpace.objects.create(
        model_path=path,
        model_name=Path(path).name,
        dimension=model_dimension(path),
        status=EmbeddingSpaceStatus.ACTIVE,
        progress=1.0,
        activated_at=timezone.now(),
    )
    ensure_hnsw_index(space)
    return space


def encode_for_space(space: EmbeddingSpace, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    return encode(space.model_path, texts, batch_size=batch_size)
