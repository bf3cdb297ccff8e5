"""Search at scale: synthetic chunks with 384-d vectors in a throwaway database (bench_search).

Measures p50/p95 of dense, sparse (BM25) and hybrid search (query embedding excluded: vectors are
given) for a user who sees every chunk, one who sees 20% (dense search walks the HNSW graph with
a filter) and one who sees 1% (few enough vectors for an exact scan), and dense recall@10 against
exact search. The last line is JSON.

    .venv/bin/python bench/search.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

DB = "bench_search"
DIM = 384


def admin_sql(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def switch_to(name: str) -> None:
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name


def copy(table: str, columns: str, lines) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as c:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 8_000_000:
                c.write(buffer.getvalue())
                buffer = io.StringIO()
        c.write(buffer.getvalue())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--words", type=int, default=60)
    args = parser.parse_args()
    original = settings.DATABASES["default"]["NAME"]
    admin_sql(f"DROP DATABASE IF EXISTS {DB}")
    admin_sql(f"CREATE DATABASE {DB}")
    try:
        switch_to(DB)
        return run(args)
    finally:
        switch_to(original)
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def run(args):
    from accounts.models import Department, Membership, Role, User
    from knowledge.embedding import configured_model_id, ensure_hnsw_index
    from knowledge.models import Document, DocumentState, DocumentVersion, EmbeddingSpace, KnowledgeBase
    from retrieval import search as S
    from retrieval.indexing import index_chunks

    t_setup = time.perf_counter()
    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(42)
    everyone_dept = Department.objects.create(name="Everyone", code="everyone")
    small_dept = Department.objects.create(name="Small", code="small")
    admin = User.objects.create(username="all", is_superuser=True)
    small_user = User.objects.create(username="one-percent")
    Membership.objects.create(user=small_user, department=small_dept, role=Role.EMPLOYEE)
    # A fifth of the chunks: above EXACT_SEARCH_MAX_ROWS, so this user's dense search walks HNSW.
    fifth_dept = Department.objects.create(name="Fifth", code="fifth")
    fifth_user = User.objects.create(username="twenty-percent")
    Membership.objects.create(user=fifth_user, department=fifth_dept, role=Role.EMPLOYEE)
    big_kb = KnowledgeBase.objects.create(name="Big", department=everyone_dept)
    small_kb = KnowledgeBase.objects.create(name="Small", department=small_dept)
    fifth_kb = KnowledgeBase.objects.create(name="Fifth", department=fifth_dept)
    per_doc = 100
    n_docs = args.chunks // per_doc

    def kb_for(doc_index: int):
        return small_kb if doc_index % 100 == 0 else fifth_kb if doc_index % 5 == 1 else big_kb

    docs = Document.objects.bulk_create(
        [Document(knowledge_base=kb_for(i), title=f"doc {i}", owner=admin, state=DocumentState.PUBLISHED)
         for i in range(n_docs)]
    )
    versions = DocumentVersion.objects.bulk_create(
        [DocumentVersion(document=d, number=1, content="", author=admin, content_sha256="x") for d in docs]
    )
    for d, v in zip(docs, versions, strict=True):
        d.live_version = d.latest_version = v
    Document.objects.bulk_update(docs, ["live_version", "latest_version"], batch_size=2000)
    space = EmbeddingSpace.objects.create(model_path=configured_model_id(), model_name="bench",
                                          dimension=DIM, status="active")
    # Text: Zipf-distributed words; vectors: clustered around topics, as real embeddings are.
    vocab = 50_000
    words = np.minimum(rng.zipf(1.2, size=(args.chunks, args.words)), vocab)
    topics = rng.normal(size=(1000, DIM)).astype(np.float32)
    chunk_topic = rng.integers(0, 1000, size=args.chunks)
    vectors = topics[chunk_topic] + 0.8 * rng.normal(size=(args.chunks, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kb_of = np.array([kb_for(i // per_doc).pk for i in range(args.chunks)])
    copy("knowledge_chunk",
         "version_id, document_id, knowledge_base_id, index, text, token_count, heading_path, position, entities, "
         "searchable, created_at, language",
         (f"{versions[i // per_doc].pk}\t{docs[i // per_doc].pk}\t{kb_of[i]}\t{i % per_doc}\t"
          f"{' '.join(f'w{w}' for w in words[i])}\t{args.words}\t{{}}\t{{}}\t[]\tt\t2025-01-01\ten\n"
          for i in range(args.chunks)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM knowledge_chunk ORDER BY id")
        chunk_ids = [r[0] for r in cursor.fetchall()]
    copy("knowledge_chunkvector", "space_id, chunk_id, knowledge_base_id, searchable, embedding",
         (f"{space.pk}\t{cid}\t{kb_of[i]}\tt\t[{','.join(f'{x:.5f}' for x in vectors[i])}]\n"
          for i, cid in enumerate(chunk_ids)))
    t_index = time.perf_counter()
    for offset in range(0, len(chunk_ids), 5000):
        index_chunks(chunk_ids=chunk_ids[offset : offset + 5000])
    bm25_index_s = time.perf_counter() - t_index
    t_hnsw = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '2GB'")
        ensure_hnsw_index(space)
        hnsw_s = time.perf_counter() - t_hnsw
        cursor.execute("VACUUM ANALYZE knowledge_chunkvector")
        cursor.execute("VACUUM ANALYZE retrieval_bm25posting")
        cursor.execute("VACUUM ANALYZE knowledge_chunk")
    setup_s = time.perf_counter() - t_setup
    print(f"setup {setup_s:.0f}s (BM25 postings {bm25_index_s:.0f}s, HNSW build {hnsw_s:.0f}s)", flush=True)

    # Queries: 3 mid-frequency words and a vector near a topic.
    q_words = rng.integers(20, 3000, size=(args.queries, 3))
    q_vectors = topics[rng.integers(0, 1000, size=args.queries)] + 0.8 * rng.normal(size=(args.queries, DIM))
    q_vectors = (q_vectors / np.linalg.norm(q_vectors, axis=1, keepdims=True)).astype(np.float32)
    id_index = np.array(chunk_ids)
    cfg = S.DEFAULT_SETTINGS
    results: dict = {"chunks": args.chunks, "queries": args.queries, "setup_s": round(setup_s, 1)}
    for label, user, visible in (("all", admin, np.ones(args.chunks, bool)),
                                 ("twenty_percent", fifth_user, kb_of == fifth_kb.pk),
                                 ("one_percent", small_user, kb_of == small_kb.pk)):
        entry = {"visible_chunks": int(visible.sum())}
        for mode in ("bm25", "dense", "hybrid"):
            latencies = []
            for i in range(args.queries):
                text = " ".join(f"w{w}" for w in q_words[i])
                t0 = time.perf_counter()
                S.search(user, text, k=10, mode=mode, vector=q_vectors[i].tolist())
                latencies.append((time.perf_counter() - t0) * 1000)
            latencies.sort()
            entry[mode] = {"p50_ms": round(latencies[len(latencies) // 2], 2),
                           "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2)}
        scope = S._scope(user)
        recalls = []
        for i in range(args.queries):
            found = {cid for cid, _ in S._dense(scope, space, q_vectors[i].tolist(), cfg, limit=10)}
            sims = vectors @ q_vectors[i]
            sims[~visible] = -9
            exact = set(id_index[np.argpartition(-sims, 10)[:10]].tolist())
            recalls.append(len(found & exact) / 10)
        entry["hnsw_recall@10"] = round(float(np.mean(recalls)), 4)
        results[label] = entry
        print(label, entry, flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(main()))
