"""Measure retrieval on a dataset: corpus.jsonl (one document per line) + dev/test.jsonl queries.

The corpus is loaded into a throwaway knowledge base through the ingestion pipeline (chunking,
embedding, BM25 indexing, searchable flags), searched as a member of its department, and the
whole load is rolled back at the end: nothing of it stays in the database.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from retrieval import search as search_module
from retrieval.evaluation import CHUNKS_PER_RANKING, document_ranking, first_relevant_rank, percentile, summarize


class Command(BaseCommand):
    help = "Recall@1/5/10, MRR@10 and latency per search mode on a corpus + queries dataset."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--split", default="test", choices=["dev", "test"])
        parser.add_argument("--json", dest="json_out")
        parser.add_argument("--limit", type=int, default=0, help="Evaluate the first N queries only.")
        parser.add_argument("--modes", default="", help="Comma-separated modes (default: all available).")
        parser.add_argument("--tune", action="store_true", help="Print a fusion-weight grid (use on dev).")

    def handle(self, *args, **options):
        directory = Path(options["directory"])
        corpus_path, queries_path = directory / "corpus.jsonl", directory / f"{options['split']}.jsonl"
        if not corpus_path.exists() or not queries_path.exists():
            raise CommandError(f"{directory} needs corpus.jsonl and {options['split']}.jsonl")
        corpus = [json.loads(line) for line in corpus_path.open(encoding="utf-8") if line.strip()]
        queries = [json.loads(line) for line in queries_path.open(encoding="utf-8") if line.strip()]
        if options["limit"]:
            queries = queries[: options["limit"]]
        modes = [m for m in options["modes"].split(",") if m] or ["bm25", "dense", "hybrid"] + (
            ["hybrid_rerank"] if search_module.rerank_available() else []
        )
        with transaction.atomic():
            user, kb, document_ids = self._load(corpus)
            report = self._evaluate(user, kb, queries, document_ids, modes, tune=options["tune"])
            transaction.set_rollback(True)
        self._print(report)
        if options["json_out"]:
            Path(options["json_out"]).write_text(json.dumps(report, indent=2), encoding="utf-8")

    def _load(self, corpus):
        from accounts.models import Department, Membership, Role, User
        from knowledge.models import Document, DocumentState, DocumentVersion, KnowledgeBase, sha256_text
        from knowledge.pipeline import versions_ingest_run

        tag = uuid.uuid4().hex[:8]
        department = Department.objects.create(name=f"Evaluation {tag}", code=f"eval-{tag}")
        user = User.objects.create(username=f"eval-{tag}")
        Membership.objects.create(user=user, department=department, role=Role.EMPLOYEE)
        kb = KnowledgeBase.objects.create(name=f"Evaluation {tag}", department=department, review_required=False)
        documents = Document.objects.bulk_create(
            [
                Document(knowledge_base=kb, title=(row.get("title") or row["id"])[:300], owner=user,
                         state=DocumentState.PUBLISHED)
                for row in corpus
            ]
        )
        versions = DocumentVersion.objects.bulk_create(
            [
                DocumentVersion(document=doc, number=1, content=row["text"], author=user,
                                content_sha256=sha256_text(row["text"]))
                for doc, row in zip(documents, corpus, strict=True)
            ]
        )
        for doc, version in zip(documents, versions, strict=True):
            doc.latest_version = doc.live_version = version
        Document.objects.bulk_update(documents, ["latest_version", "live_version"])
        started = time.perf_counter()
        batch = 64
        for offset in range(0, len(versions), batch):
            versions_ingest_run(version_ids=[v.pk for v in versions[offset : offset + batch]])
            self._analyze()
            self.stderr.write(f"\ringested {min(offset + batch, len(versions))}/{len(versions)}", ending="")
        self.stderr.write(f"\ningestion: {time.perf_counter() - started:.1f}s")
        return user, kb, {row["id"]: doc.pk for row, doc in zip(corpus, documents, strict=True)}

    @staticmethod
    def _analyze():
        # The load is never committed, so autovacuum never analyzes it: without fresh statistics the
        # planner can pick pathological plans (nested loops over whole tables) for later batches.
        with connection.cursor() as cursor:
            for table in ("knowledge_document", "knowledge_documentversion", "knowledge_chunk",
                          "knowledge_chunkvector", "knowledge_versioningestion", "retrieval_bm25posting",
                          "retrieval_bm25term"):
                cursor.execute(f"ANALYZE {table}")

    def _evaluate(self, user, kb, queries, document_ids, modes, *, tune):
        from knowledge.embedding import encode_for_space

        space = search_module.active_search_space()
        started = time.perf_counter()
        vectors = encode_for_space(space, [q["question"] for q in queries])
        embed_ms = (time.perf_counter() - started) * 1000 / max(1, len(queries))
        gold = [{document_ids[r] for r in q["relevant_ids"] if r in document_ids} for q in queries]
        report = {"queries": len(queries), "query_embedding_ms": round(embed_ms, 2), "modes": {}}
        for mode in modes:
            ranks, latencies = [], []
            for query, vector, relevant in zip(queries, vectors, gold, strict=True):
                t0 = time.perf_counter()
                hits = search_module.search(user, query["question"], knowledge_bases=[kb], k=CHUNKS_PER_RANKING, mode=mode,
                                            vector=vector.tolist())
                latencies.append((time.perf_counter() - t0) * 1000)
                ranks.append(first_relevant_rank(document_ranking(hits), relevant))
            report["modes"][mode] = {
                **summarize(ranks),
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
            }
            self.stderr.write(f"{mode}: {report['modes'][mode]}")
        if tune:
            report["tuning"] = self._tune(user, kb, queries, vectors, gold, space)
        return report

    def _tune(self, user, kb, queries, vectors, gold, space):
        """Fusion grid on completed candidate scores (the same candidates `search` fuses)."""
        from knowledge.models import Chunk

        cfg = search_module.settings_for([kb])
        scope = search_module._scope(user, [kb], None)
        pools = []
        for query, vector in zip(queries, vectors, strict=True):
            bm25, bound = search_module._bm25(scope, query["question"], cfg, limit=cfg["candidates"])
            bm25 = dict(bm25)
            dense = dict(search_module._dense(scope, space, vector.tolist(), cfg, limit=cfg["candidates"]))
            missing = sorted(set(dense) - set(bm25))
            if missing and bound:
                bm25.update(search_module._bm25(scope, query["question"], cfg, limit=None, only=missing)[0])
            missing = sorted(set(bm25) - set(dense))
            if missing:
                dense.update(search_module._dense(scope, space, vector.tolist(), cfg, limit=None, only=missing))
            pools.append((bm25, dense, bound))
        chunk_document = dict(Chunk.objects.filter(knowledge_base=kb).values_list("pk", "document_id"))
        grid = {}
        candidates = [("weighted", {"bm25": 1.0, "dense": wd}) for wd in (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)]
        candidates += [("rrf", {"bm25": 1.0, "dense": wd}) for wd in (0.3, 0.5, 1.0)]
        for fusion, weights in candidates:
            ranks = []
            for (bm25, dense, bound), relevant in zip(pools, gold, strict=True):
                fused = search_module.fuse(bm25, dense, bm25_bound=bound, weights=weights, fusion=fusion)
                ordered = sorted(fused, key=lambda cid: (-fused[cid], cid))
                ranking = []
                for cid in ordered:
                    doc = chunk_document[cid]
                    if doc not in ranking:
                        ranking.append(doc)
                ranks.append(first_relevant_rank(ranking, relevant))
            key = f"{fusion} dense={weights['dense']}"
            grid[key] = summarize(ranks)
            self.stderr.write(f"{key}: {grid[key]}")
        return grid

    def _print(self, report):
        self.stdout.write(f"queries: {report['queries']}  (query embedding {report['query_embedding_ms']} ms each, "
                          "not in the latencies)")
        self.stdout.write(f"{'mode':<14}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}{'p50 ms':>9}{'p95 ms':>9}")
        for mode, m in report["modes"].items():
            self.stdout.write(
                f"{mode:<14}{m['recall@1']:>8.3f}{m['recall@5']:>8.3f}{m['recall@10']:>8.3f}{m['mrr@10']:>8.3f}"
                f"{m['p50_ms']:>9.1f}{m['p95_ms']:>9.1f}"
            )
