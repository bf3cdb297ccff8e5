"""Measure retrieval on a dataset: corpus.jsonl (one document per line) + dev/test.jsonl queries.

It never touches the product's tables or locks: it creates a throwaway database on the same
server (`evaluate_retrieval_<pid>`), migrates it, loads the corpus through the ingestion pipeline
(chunking, embedding, BM25 indexing, searchable flags) in short committed batches, searches as a
member of the evaluation department, and drops the database at the end, also on error or Ctrl-C.

No-answer calibration: a deterministic fifth of the split's gold passages (`--holdout`) is loaded
into a second knowledge base. Retrieval quality is measured over both knowledge bases (the whole
corpus); the no-answer cut over the first one only, where the questions whose gold passage was
held out have no answer (same subjects, same language: the rest of their article is there).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from retrieval import search as search_module
from retrieval.evaluation import (
    CHUNKS_PER_RANKING,
    abstention_curve,
    document_ranking,
    first_relevant_rank,
    percentile,
    summarize,
)

def embedding_cache_env() -> str:
    from knowledge.embedding import EMBEDDING_CACHE_ENV

    return EMBEDDING_CACHE_ENV


CURVE_THRESHOLDS = [round(0.30 + 0.01 * i, 2) for i in range(51)]


def held_out(passage_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(f"holdout:{passage_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


class Command(BaseCommand):
    help = "Recall@1/5/10, MRR@10, latency per search mode and the no-answer rates, in a throwaway database."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--split", default="test", help="dev, test or dev,test (one corpus load)")
        parser.add_argument("--json", dest="json_out")
        parser.add_argument("--limit", type=int, default=0, help="Evaluate the first N queries of each split.")
        parser.add_argument("--dev-limit", type=int, default=0, help="Evaluate the first N dev queries.")
        parser.add_argument("--modes", default="", help="Comma-separated modes (default: all available; 'none').")
        parser.add_argument("--holdout", type=float, default=0.2,
                            help="Share of gold passages held out for the no-answer cut (0 disables it).")
        parser.add_argument("--tune", dest="pools_out",
                            help="Write every query's completed candidate scores to PREFIX.<split>.jsonl (the "
                                 "inputs of the fusion, for offline tuning on dev and for recomputing test "
                                 "figures of a tuned fusion without re-embedding).")
        parser.add_argument("--articles-only", action="store_true",
                            help="Load only the passages of the evaluated questions' articles (a smaller, "
                                 "same-subject corpus when the whole one takes too long to embed).")
        parser.add_argument("--corpus-size", type=int, default=0,
                            help="With --articles-only: add other passages (a fixed pseudo-random choice) "
                                 "up to this many in all, as distractors.")
        parser.add_argument("--embedding-cache", "--vector-cache", dest="embedding_cache",
                            help="Directory of an on-disk vector cache (by model and exact text, queries apart "
                                 "from passages): a corpus is embedded once, reruns read it back. Default: "
                                 f"${embedding_cache_env()}, when set.")

    def handle(self, *args, **options):
        directory = Path(options["directory"])
        splits = [s for s in options["split"].split(",") if s]
        if not splits or any(s not in ("dev", "test") for s in splits):
            raise CommandError("--split is dev, test or dev,test")
        corpus_path = directory / "corpus.jsonl"
        paths = {split: directory / f"{split}.jsonl" for split in splits}
        missing = [str(p) for p in [corpus_path, *paths.values()] if not p.exists()]
        if missing:
            raise CommandError(f"{directory} needs corpus.jsonl and {', '.join(f'{s}.jsonl' for s in splits)}"
                               f" (missing: {', '.join(missing)})")
        corpus = [json.loads(line) for line in corpus_path.open(encoding="utf-8") if line.strip()]
        queries = {}
        for split, path in paths.items():
            rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
            limit = options["dev_limit"] if split == "dev" and options["dev_limit"] else options["limit"]
            queries[split] = rows[:limit] if limit else rows
        if options["modes"] == "none":
            modes = []
        else:
            modes = [m for m in options["modes"].split(",") if m] or ["bm25", "dense", "hybrid"] + (
                ["hybrid_rerank"] if search_module.rerank_available() else []
            )
        gold_passages = {pid for rows in queries.values() for q in rows for pid in q["relevant_ids"]}
        if options["articles_only"]:
            title_of = {row["id"]: row.get("title") for row in corpus}
            articles = {title_of.get(pid) for pid in gold_passages}
            kept = [row for row in corpus if row.get("title") in articles]
            others = sorted((row for row in corpus if row.get("title") not in articles),
                            key=lambda row: hashlib.sha256(row["id"].encode()).hexdigest())
            corpus = kept + others[: max(0, options["corpus_size"] - len(kept))]
        holdout = {pid for pid in gold_passages if options["holdout"] and held_out(pid, options["holdout"])}

        from knowledge import embedding

        report = {"dataset": directory.name, "passages": len(corpus), "holdout_passages": len(holdout), "splits": {}}
        cache_dir = options.get("embedding_cache") or os.environ.get(embedding_cache_env(), "")
        with embedding.vector_cache(cache_dir) as cache, self._throwaway_database():
            user, kbs, document_ids, chunks = self._load(corpus, holdout)
            space = search_module.active_search_space()
            report["model"] = space.model_name
            report["chunks"] = chunks
            for split, rows in queries.items():
                report["splits"][split] = self._evaluate(
                    user, kbs, rows, document_ids, holdout, modes, space,
                    pools_out=f"{options['pools_out']}.{split}.jsonl" if options["pools_out"] else None,
                )
            if cache is not None:
                report["embedding_cache"] = {"path": cache.path, "hits": cache.hits, "misses": cache.misses}
                self.stderr.write(f"embedding cache {cache.path}: {cache.hits} vectors read, {cache.misses} encoded")
        self._print(report)
        if options["json_out"]:
            Path(options["json_out"]).write_text(json.dumps(report, indent=2), encoding="utf-8")

    # --- the throwaway database -------------------------------------------------------------------

    def _throwaway_database(self):
        command = self

        class Database:
            def __enter__(self):
                # A terminated run still drops its database (SIGTERM unwinds like Ctrl-C).
                signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
                self.name = f"evaluate_retrieval_{os.getpid()}"
                connection.settings_dict.setdefault("TEST", {})["NAME"] = self.name
                self.old_name = connection.settings_dict["NAME"]
                command.stderr.write(f"creating the throwaway database {self.name} (migrations)…")
                connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)

            def __exit__(self, *exc):
                connection.creation.destroy_test_db(self.old_name, verbosity=0)
                command.stderr.write(f"dropped {self.name}")
                return False

        return Database()

    def _load(self, corpus, holdout):
        from accounts.models import Department, Membership, Role, User
        from knowledge.models import Chunk, Document, DocumentState, DocumentVersion, KnowledgeBase, sha256_text
        from knowledge.ingestion.services import versions_ingest_run

        tag = uuid.uuid4().hex[:8]
        department = Department.objects.create(name=f"Evaluation {tag}", code=f"eval-{tag}")
        user = User.objects.create(username=f"eval-{tag}")
        Membership.objects.create(user=user, department=department, role=Role.EMPLOYEE)
        main = KnowledgeBase.objects.create(name=f"Evaluation {tag}", department=department, review_required=False)
        held = KnowledgeBase.objects.create(name=f"Held out {tag}", department=department, review_required=False)
        documents = Document.objects.bulk_create(
            [
                Document(knowledge_base=held if row["id"] in holdout else main,
                         title=(row.get("title") or row["id"])[:300], owner=user, state=DocumentState.PUBLISHED)
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
            self.stderr.write(f"\ringested {min(offset + batch, len(versions))}/{len(versions)}", ending="")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stderr.write(f"\ningestion: {time.perf_counter() - started:.1f}s")
        ids = {row["id"]: doc.pk for row, doc in zip(corpus, documents, strict=True)}
        return user, {"main": main, "held": held}, ids, Chunk.objects.count()

    # --- measuring --------------------------------------------------------------------------------

    def _evaluate(self, user, kbs, queries, document_ids, holdout, modes, space, *, pools_out):
        from knowledge.embedding import encode_queries_for_space

        started = time.perf_counter()
        vectors = encode_queries_for_space(space, [q["question"] for q in queries])
        embed_ms = (time.perf_counter() - started) * 1000 / max(1, len(queries))
        gold = [{document_ids[r] for r in q["relevant_ids"] if r in document_ids} for q in queries]
        both = [kbs["main"], kbs["held"]]
        report = {"queries": len(queries), "query_embedding_ms": round(embed_ms, 2), "modes": {}}
        for mode in modes:
            ranks, latencies = [], []
            for query, vector, relevant in zip(queries, vectors, gold, strict=True):
                t0 = time.perf_counter()
                results = search_module.search(user, query["question"], knowledge_bases=both, k=CHUNKS_PER_RANKING,
                                               mode=mode, vector=vector.tolist())
                latencies.append((time.perf_counter() - t0) * 1000)
                ranks.append(first_relevant_rank(document_ranking(results.ranked_hits), relevant))
            report["modes"][mode] = {**summarize(ranks), "p50_ms": percentile(latencies, 50),
                                     "p95_ms": percentile(latencies, 95)}
            self.stderr.write(f"{mode}: {report['modes'][mode]}")
        if holdout and "hybrid" in modes:
            report["no_answer"] = self._no_answer(user, kbs["main"], queries, vectors, holdout)
        if pools_out:
            self._dump_pools(pools_out, user, both, queries, vectors, gold, holdout, space)
        return report

    def _no_answer(self, user, kb, queries, vectors, holdout):
        """The default search over the knowledge base without the held-out passages."""
        answerable, unanswerable = [], []
        threshold = None
        for query, vector in zip(queries, vectors, strict=True):
            results = search_module.search(user, query["question"], knowledge_bases=[kb], k=10, vector=vector.tolist())
            threshold = results.threshold
            unanswered = any(pid in holdout for pid in query["relevant_ids"])
            (unanswerable if unanswered else answerable).append((results.no_answer, results.relevance))
        rate = lambda rows: round(sum(1 for cut, _ in rows if cut) / max(1, len(rows)), 4)  # noqa: E731
        report = {
            "threshold": threshold,
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "answerable_abstention": rate(answerable),
            "unanswerable_abstention": rate(unanswerable),
            "curve": abstention_curve([s for _, s in answerable], [s for _, s in unanswerable], CURVE_THRESHOLDS),
        }
        self.stderr.write(f"no answer: {json.dumps({k: v for k, v in report.items() if k != 'curve'})}")
        return report

    def _dump_pools(self, path, user, kbs, queries, vectors, gold, holdout, space):
        """Completed candidate scores per query (what `search` fuses), for offline fusion tuning."""
        from knowledge.models import Chunk

        cfg = search_module.settings_for(kbs)
        scope = search_module._scope(user, kbs, None)
        with open(path, "w", encoding="utf-8") as out:
            chunk_rows = Chunk.objects.filter(knowledge_base__in=kbs).values_list(
                "pk", "document_id", "knowledge_base_id", "text")
            # [document, knowledge base, language of the chunk's text]
            out.write(json.dumps({"chunks": {pk: [doc, kb, search_module.language(text)]
                                             for pk, doc, kb, text in chunk_rows},
                                  "held_kb": kbs[1].pk, "model": space.model_path}) + "\n")
            for query, vector, relevant in zip(queries, vectors, gold, strict=True):
                bm25, dense, bound = search_module.candidate_scores(scope, space, query["question"], vector.tolist(), cfg)
                # Both bounds, so that the grid can score bm25_bound_unknown either way.
                bounds = {f"bound_{name}": search_module._bm25_weights(query["question"], {**cfg, "bm25_bound_unknown": flag}, scope)[3]
                          for name, flag in (("known", False), ("all", True))}
                out.write(json.dumps({
                    "question": query["question"], "gold": sorted(relevant), "bound": bound, **bounds,
                    "unanswerable": any(pid in holdout for pid in query["relevant_ids"]),
                    "bm25": bm25, "dense": dense,
                }) + "\n")

    def _print(self, report):
        self.stdout.write(f"{report['dataset']}: {report['chunks']} chunks, model {report['model']}")
        for split, r in report["splits"].items():
            self.stdout.write(f"[{split}] queries: {r['queries']}  (query embedding {r['query_embedding_ms']} ms each, "
                              "not in the latencies)")
            self.stdout.write(f"{'mode':<14}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}{'p50 ms':>9}{'p95 ms':>9}")
            for mode, m in r["modes"].items():
                self.stdout.write(
                    f"{mode:<14}{m['recall@1']:>8.3f}{m['recall@5']:>8.3f}{m['recall@10']:>8.3f}{m['mrr@10']:>8.3f}"
                    f"{m['p50_ms']:>9.1f}{m['p95_ms']:>9.1f}"
                )
            if "no_answer" in r:
                n = r["no_answer"]
                self.stdout.write(
                    f"no-answer cut {n['threshold']}: answerable abstention {n['answerable_abstention']:.3f} "
                    f"({n['answerable']} questions), unanswerable abstention {n['unanswerable_abstention']:.3f} "
                    f"({n['unanswerable']} questions whose gold passage is held out)"
                )
