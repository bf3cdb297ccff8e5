"""BM25 index maintenance, called by the ingestion pipeline and by publishing.

- `index_chunks` writes the postings of new chunks (in the pipeline's transaction).
- `searchable_changed` makes postings follow `Chunk.searchable` and keeps the collection
  statistics (chunk count, total length, df) over searchable chunks only.

The chunk row is the truth: both functions read `Chunk.searchable` rather than trusting their
arguments, so calling them twice, or in either order, leaves the same index.

Statistics are never updated in place by writers: each change appends delta rows
(`Bm25StatisticsDelta`, `Bm25TermDelta`) that readers add to the base rows in the same statement,
and `statistics_rollup` (beat, every minute) folds them into the base rows. Each delta names its
knowledge base, and the base rows exist company-wide and per knowledge base: a search reads the
statistics of the knowledge bases its user may read (`scope_statistics`, `scope_term_df`), so
what another department's knowledge holds moves no score the user sees. So publishing (which
flips searchable flags) takes no lock that an ingestion batch holds: a reviewer's approve never
waits for a 256-version batch to commit. Posting writers (`index_chunks`, the re-index) still
serialize among themselves on one advisory lock, which rules out deadlocks on new terms.
"""

from __future__ import annotations

import io
import math
from collections import Counter

from django.db import connection, transaction

from .tokenize import signature, tokenize

STATS_ID = 1
# pg_advisory_xact_lock key serializing posting writers (ingestion batches, re-index, rebuild).
POSTING_WRITERS_LOCK = 0x626D3235  # "bm25"


def chunk_index_text(*, title: str, heading_path: list[str], text: str) -> str:
    """What BM25 indexes for a chunk: the document title and headings help short chunks match."""
    return "\n".join([title, *heading_path, text])


def _ensure_statistics(cursor) -> None:
    # A new (empty) index follows the current tokenizer; an existing one keeps what it recorded.
    cursor.execute(
        "INSERT INTO retrieval_bm25statistics (id, chunk_count, total_length, tokenizer) VALUES (%s, 0, 0, %s) "
        "ON CONFLICT (id) DO NOTHING",
        [STATS_ID, signature()],
    )


def _lock_posting_writers(cursor) -> None:
    """Serialize writers of postings (not publishing, which only flips flags and appends deltas)."""
    _ensure_statistics(cursor)
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [POSTING_WRITERS_LOCK])


def _lock_statistics_row(cursor) -> None:
    """The base row's lock: only the roll-up and the rebuild take it, never a writer."""
    _ensure_statistics(cursor)
    cursor.execute("SELECT 1 FROM retrieval_bm25statistics WHERE id = %s FOR UPDATE", [STATS_ID])


# Readers: base row plus the deltas not rolled up yet, in one statement (one snapshot).
STATISTICS_SQL = (
    "SELECT (s.chunk_count + coalesce(d.n, 0))::bigint, (s.total_length + coalesce(d.total, 0))::bigint "
    "FROM retrieval_bm25statistics s, "
    "(SELECT sum(chunk_count) AS n, sum(total_length) AS total FROM retrieval_bm25statisticsdelta) d "
    "WHERE s.id = 1"
)
TERM_DF_SQL = (
    "SELECT t.id, t.term, t.df + coalesce((SELECT sum(d.df) FROM retrieval_bm25termdelta d "
    "WHERE d.term_id = t.id), 0)::int AS df FROM retrieval_bm25term t WHERE t.term = ANY(%s::text[])"
)


# The same over some knowledge bases (a search: those its user may read).
SCOPE_STATISTICS_SQL = (
    "SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(total), 0)::bigint FROM ("
    "SELECT chunk_count AS n, total_length AS total FROM retrieval_bm25knowledgebasestatistics "
    "WHERE knowledge_base_id = ANY(%s::bigint[]) UNION ALL "
    "SELECT chunk_count, total_length FROM retrieval_bm25statisticsdelta WHERE knowledge_base_id = ANY(%s::bigint[])) x"
)
SCOPE_TERM_DF_SQL = (
    "SELECT t.id, t.term, (coalesce((SELECT sum(k.df) FROM retrieval_bm25knowledgebaseterm k "
    "WHERE k.term_id = t.id AND k.knowledge_base_id = ANY(%s::bigint[])), 0) + coalesce((SELECT sum(d.df) "
    "FROM retrieval_bm25termdelta d WHERE d.term_id = t.id AND d.knowledge_base_id = ANY(%s::bigint[])), 0))::int "
    "FROM retrieval_bm25term t WHERE t.term = ANY(%s::text[])"
)


def scope_statistics(knowledge_base_ids: list[int]) -> tuple[int, int]:
    """(searchable chunk count, their total length) within these knowledge bases, deltas included."""
    ids = sorted(set(knowledge_base_ids))
    with connection.cursor() as cursor:
        cursor.execute(SCOPE_STATISTICS_SQL, [ids, ids])
        n, total = cursor.fetchone()
    return int(n), int(total)


def scope_term_df(knowledge_base_ids: list[int], terms: list[str]) -> dict[str, tuple[int, int]]:
    """term -> (term id, df within these knowledge bases), for the terms the index knows."""
    ids = sorted(set(knowledge_base_ids))
    with connection.cursor() as cursor:
        cursor.execute(SCOPE_TERM_DF_SQL, [ids, ids, sorted(set(terms))])
        return {term: (term_id, df) for term_id, term, df in cursor.fetchall()}


def bm25_idf(n: int, df: int) -> float:
    """BM25's IDF of a term in `df` of `n` chunks (BM25+'s form, never negative)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def term_idf(terms: list[str], knowledge_base_ids: list[int]) -> dict[str, float]:
    """BM25 IDF of each term over the searchable chunks of these knowledge bases (those the asker
    may read, as search counts them; unknown terms get the highest IDF), in one statement. Chat's
    extractive answers weigh the question's words with it."""
    terms, ids = sorted(set(terms)), sorted(set(knowledge_base_ids))
    if not terms:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.n, t.term, t.df FROM ({SCOPE_STATISTICS_SQL}) AS s(n, total) "
                       f"LEFT JOIN ({SCOPE_TERM_DF_SQL}) AS t(id, term, df) ON TRUE", [ids, ids, ids, ids, terms])
        rows = cursor.fetchall()
    n = int(rows[0][0]) if rows and rows[0][0] else 1
    df = {term: count for _, term, count in rows if term is not None}
    return {t: bm25_idf(n, df.get(t, 0)) for t in terms}


def collection_statistics() -> tuple[int, int]:
    """(searchable chunk count, their total length in terms), deltas included."""
    with connection.cursor() as cursor:
        cursor.execute(STATISTICS_SQL)
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def term_df(terms: list[str]) -> dict[str, int]:
    """Document frequency over searchable chunks of each known term, deltas included."""
    with connection.cursor() as cursor:
        cursor.execute(TERM_DF_SQL, [list(set(terms))])
        return {term: df for _id, term, df in cursor.fetchall()}


def _term_ids(cursor, terms: set[str]) -> dict[str, int]:
    if not terms:
        return {}
    ordered = sorted(terms)
    cursor.execute(
        "INSERT INTO retrieval_bm25term (term, df) SELECT t, 0 FROM unnest(%s::text[]) AS t "
        "ON CONFLICT (term) DO NOTHING",
        [ordered],
    )
    cursor.execute("SELECT term, id FROM retrieval_bm25term WHERE term = ANY(%s::text[])", [ordered])
    return dict(cursor.fetchall())


def _apply_delta(cursor, rows: list[tuple[int, int, int, bool, int]]) -> None:
    """rows: (term_id, chunk_id, length, now_searchable, knowledge_base_id) of postings whose flag
    just changed."""
    if not rows:
        return
    df: Counter[tuple[int, int]] = Counter()
    chunks: dict[int, tuple[int, bool, int]] = {}
    for term_id, chunk_id, length, searchable, kb in rows:
        df[(term_id, kb)] += 1 if searchable else -1
        chunks[chunk_id] = (length, searchable, kb)
    keys = sorted(key for key, d in df.items() if d)
    if keys:
        cursor.execute(
            "INSERT INTO retrieval_bm25termdelta (term_id, knowledge_base_id, df) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[])",
            [[t for t, _ in keys], [kb for _, kb in keys], [df[key] for key in keys]],
        )
    per_kb: dict[int, tuple[int, int]] = {}
    for length, searchable, kb in chunks.values():
        count, total = per_kb.get(kb, (0, 0))
        per_kb[kb] = (count + 1, total + length) if searchable else (count - 1, total - length)
    changed = [(kb, count, total) for kb, (count, total) in sorted(per_kb.items()) if count or total]
    if changed:
        cursor.execute(
            "INSERT INTO retrieval_bm25statisticsdelta (knowledge_base_id, chunk_count, total_length) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])",
            [[kb for kb, *_ in changed], [c for _, c, _ in changed], [t for *_, t in changed]],
        )


def _remove_postings(cursor, chunk_ids: list[int]) -> None:
    cursor.execute(
        "DELETE FROM retrieval_bm25posting WHERE chunk_id = ANY(%s) "
        "RETURNING term_id, chunk_id, length, searchable, knowledge_base_id",
        [chunk_ids],
    )
    # Removing a searchable posting is the same as it stopping being searchable.
    _apply_delta(cursor, [(t, c, ln, False, kb) for t, c, ln, s, kb in cursor.fetchall() if s])


@transaction.atomic
def index_chunks(*, chunk_ids: list[int]) -> None:
    """Tokenize chunks and write their postings (replacing any earlier ones)."""
    chunk_ids = sorted(set(chunk_ids))
    if not chunk_ids:
        return
    with connection.cursor() as cursor:
        # Plain SQL rather than the Chunk model, so that migrations can re-index with this function.
        cursor.execute(
            "SELECT c.id, c.knowledge_base_id, c.searchable, c.text, c.heading_path, d.title "
            "FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id WHERE c.id = ANY(%s)",
            [chunk_ids],
        )
        chunks = cursor.fetchall()
    tokenized = [
        (cid, kb, searchable, Counter(tokenize(chunk_index_text(title=title, heading_path=headings, text=text))))
        for cid, kb, searchable, text, headings, title in chunks
    ]
    with connection.cursor() as cursor:
        _lock_posting_writers(cursor)
        _remove_postings(cursor, chunk_ids)
        ids = _term_ids(cursor, {term for *_, counts in tokenized for term in counts})
        buffer = io.StringIO()
        added = []
        for cid, kb, searchable, counts in tokenized:
            length = sum(counts.values())
            for term, tf in counts.items():
                buffer.write(f"{cid}\t{ids[term]}\t{kb}\t{tf}\t{length}\t{'t' if searchable else 'f'}\n")
                if searchable:
                    added.append((ids[term], cid, length, True, kb))
        with cursor.cursor.copy(
            "COPY retrieval_bm25posting (chunk_id, term_id, knowledge_base_id, tf, length, searchable) FROM STDIN"
        ) as copy:
            copy.write(buffer.getvalue())
        _apply_delta(cursor, added)


@transaction.atomic
def chunks_delete(*, chunk_ids: list[int]) -> None:
    """Delete chunks with their postings and vectors; the statistics lose what was searchable."""
    chunk_ids = sorted(set(chunk_ids))
    if not chunk_ids:
        return
    with connection.cursor() as cursor:
        _lock_posting_writers(cursor)
        _remove_postings(cursor, chunk_ids)
        cursor.execute("DELETE FROM knowledge_chunkvector WHERE chunk_id = ANY(%s)", [chunk_ids])
        cursor.execute("DELETE FROM knowledge_chunk WHERE id = ANY(%s)", [chunk_ids])


@transaction.atomic
def searchable_changed(*, added: list[int], removed: list[int]) -> None:
    """Make postings follow `Chunk.searchable` for these chunks and update the statistics."""
    chunk_ids = sorted(set(added) | set(removed))
    if not chunk_ids:
        return
    with connection.cursor() as cursor:
        _ensure_statistics(cursor)
        cursor.execute(
            "SELECT c.id FROM knowledge_chunk c WHERE c.id = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM retrieval_bm25posting p WHERE p.chunk_id = c.id)",
            [chunk_ids],
        )
        missing = [row[0] for row in cursor.fetchall()]
    if missing:
        index_chunks(chunk_ids=missing)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE retrieval_bm25posting AS p SET searchable = c.searchable FROM knowledge_chunk c "
            "WHERE p.chunk_id = c.id AND c.id = ANY(%s) AND p.searchable <> c.searchable "
            "RETURNING p.term_id, p.chunk_id, p.length, p.searchable, p.knowledge_base_id",
            [chunk_ids],
        )
        _apply_delta(cursor, cursor.fetchall())


@transaction.atomic
def statistics_rollup() -> None:
    """Fold the committed deltas into the base rows (beat, every minute). Each delta row is moved
    or left in one transaction, so base + remaining deltas never change for a reader."""
    with connection.cursor() as cursor:
        _lock_statistics_row(cursor)
        # One statement each: the deltas go into the company-wide row and their knowledge bases' rows.
        cursor.execute(
            "WITH d AS (DELETE FROM retrieval_bm25statisticsdelta RETURNING knowledge_base_id, chunk_count, total_length), "
            "x AS (SELECT knowledge_base_id, sum(chunk_count) AS n, sum(total_length) AS total FROM d "
            "GROUP BY knowledge_base_id), "
            "g AS (UPDATE retrieval_bm25statistics SET chunk_count = chunk_count + (SELECT coalesce(sum(n), 0) FROM x), "
            "total_length = total_length + (SELECT coalesce(sum(total), 0) FROM x) WHERE id = %s) "
            "INSERT INTO retrieval_bm25knowledgebasestatistics AS s (knowledge_base_id, chunk_count, total_length) "
            "SELECT knowledge_base_id, n, total FROM x ON CONFLICT (knowledge_base_id) DO UPDATE SET "
            "chunk_count = s.chunk_count + EXCLUDED.chunk_count, total_length = s.total_length + EXCLUDED.total_length",
            [STATS_ID],
        )
        cursor.execute(
            "WITH d AS (DELETE FROM retrieval_bm25termdelta RETURNING term_id, knowledge_base_id, df), "
            "x AS (SELECT term_id, knowledge_base_id, sum(df) AS df FROM d GROUP BY term_id, knowledge_base_id), "
            "g AS (UPDATE retrieval_bm25term t SET df = t.df + y.df FROM "
            "(SELECT term_id, sum(df) AS df FROM x GROUP BY term_id) y WHERE t.id = y.term_id AND y.df <> 0) "
            "INSERT INTO retrieval_bm25knowledgebaseterm AS k (term_id, knowledge_base_id, df) "
            "SELECT term_id, knowledge_base_id, df FROM x WHERE df <> 0 "
            "ON CONFLICT (term_id, knowledge_base_id) DO UPDATE SET df = k.df + EXCLUDED.df"
        )


@transaction.atomic
def statistics_rebuild() -> None:
    """Recount N, total length and df from the postings (after chunks were deleted in bulk)."""
    with connection.cursor() as cursor:
        _lock_statistics_row(cursor)
        _lock_posting_writers(cursor)
        # Every delta writer changes postings in the same transaction: this waits for them and
        # holds off new ones, so the recount and the deltas it replaces agree.
        cursor.execute("LOCK TABLE retrieval_bm25posting IN SHARE MODE")
        cursor.execute("DELETE FROM retrieval_bm25statisticsdelta")
        cursor.execute("DELETE FROM retrieval_bm25termdelta")
        cursor.execute(
            "UPDATE retrieval_bm25statistics s SET chunk_count = x.n, total_length = x.total FROM "
            "(SELECT count(*) AS n, coalesce(sum(length), 0) AS total FROM "
            "(SELECT DISTINCT chunk_id, length FROM retrieval_bm25posting WHERE searchable) AS c) AS x WHERE s.id = %s",
            [STATS_ID],
        )
        cursor.execute(
            "UPDATE retrieval_bm25term t SET df = coalesce(x.df, 0) FROM retrieval_bm25term t2 LEFT JOIN "
            "(SELECT term_id, count(*) AS df FROM retrieval_bm25posting WHERE searchable GROUP BY term_id) AS x "
            "ON x.term_id = t2.id WHERE t.id = t2.id AND t.df <> coalesce(x.df, 0)"
        )
        cursor.execute(REBUILD_PER_KNOWLEDGE_BASE_SQL)


# The per-knowledge-base base rows recounted from the postings.
REBUILD_PER_KNOWLEDGE_BASE_SQL = (
    "DELETE FROM retrieval_bm25knowledgebasestatistics; "
    "INSERT INTO retrieval_bm25knowledgebasestatistics (knowledge_base_id, chunk_count, total_length) "
    "SELECT knowledge_base_id, count(*), coalesce(sum(length), 0) FROM "
    "(SELECT DISTINCT chunk_id, knowledge_base_id, length FROM retrieval_bm25posting WHERE searchable) AS c "
    "GROUP BY knowledge_base_id; "
    "DELETE FROM retrieval_bm25knowledgebaseterm; "
    "INSERT INTO retrieval_bm25knowledgebaseterm (term_id, knowledge_base_id, df) "
    "SELECT term_id, knowledge_base_id, count(*) FROM retrieval_bm25posting WHERE searchable "
    "GROUP BY term_id, knowledge_base_id"
)

REINDEX_BATCH = 2_000


def reindex_all(*, batch: int = REINDEX_BATCH, progress=None, rollup: bool = True) -> int:
    """Re-tokenize every chunk (after a tokenizer or user-dictionary change); returns the count.

    Batches commit one by one, so searches keep being served while it runs: a chunk's old postings
    are replaced by its new ones in one transaction. Terms left in no posting are deleted at the
    end, and the statistics row records the tokenizer signature the index now follows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_chunk")
        total = cursor.fetchone()[0]
    done, last = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM knowledge_chunk WHERE id > %s ORDER BY id LIMIT %s", [last, batch])
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            break
        index_chunks(chunk_ids=ids)
        done, last = done + len(ids), ids[-1]
        if progress:
            progress(done, total)
    if rollup:
        statistics_rollup()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_posting_writers(cursor)
        cursor.execute(
            "DELETE FROM retrieval_bm25term t WHERE NOT EXISTS "
            "(SELECT 1 FROM retrieval_bm25posting p WHERE p.term_id = t.id)"
        )
        if rollup:
            # Their deltas and per-knowledge-base counts sum to zero (no posting, so no searchable
            # one): drop them with the terms.
            cursor.execute(
                "DELETE FROM retrieval_bm25termdelta d WHERE NOT EXISTS "
                "(SELECT 1 FROM retrieval_bm25term t WHERE t.id = d.term_id)"
            )
            cursor.execute(
                "DELETE FROM retrieval_bm25knowledgebaseterm k WHERE NOT EXISTS "
                "(SELECT 1 FROM retrieval_bm25term t WHERE t.id = k.term_id)"
            )
        cursor.execute("UPDATE retrieval_bm25statistics SET tokenizer = %s WHERE id = %s", [signature(), STATS_ID])
    return done


def _recorded_tokenizer() -> tuple[str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tokenizer FROM retrieval_bm25statistics WHERE id = %s", [STATS_ID])
        return cursor.fetchone()


def index_is_stale() -> bool:
    """Whether the postings were written by another tokenizer than the current one."""
    row = _recorded_tokenizer()
    return row is not None and row[0] != signature()


def index_tokenizer() -> str | None:
    """The tokenizer signature the index records (None before anything was indexed)."""
    row = _recorded_tokenizer()
    return row[0] if row and row[0] else None
