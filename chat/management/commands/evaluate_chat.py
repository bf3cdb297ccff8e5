"""Ask every question of a dataset through the real chat pipeline and measure the answers.

The corpus is loaded as evaluate_retrieval loads it (same loader and throwaway database: real
ingestion, dropped at the end; `--vector-cache` reuses passage and question vectors across runs).
With --unanswerable F, a seeded share F of the questions has its gold passages left out of the
corpus: same subjects and language, but no answer in the knowledge base.

There is one relevance cut: search()'s calibrated no-answer cut (`results.no_answer`). The chat
has no threshold of its own; `--tune` reports, on dev, how both abstention rates move with the
cut's threshold (the curve) and where the search's calibrated threshold sits on it.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from retrieval.evaluation import percentile


def choose_unanswerable(queries: list[dict], fraction: float, seed: int) -> set[str]:
    """Passage ids to leave out so that about `fraction` of the questions lose their gold passage."""
    if fraction <= 0:
        return set()
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    removed: set[str] = set()
    target = fraction * len(queries)
    for i in order:
        if sum(1 for q in queries if set(q["relevant_ids"]) & removed) >= target:
            break
        removed.update(queries[i]["relevant_ids"])
    return removed


class Command(BaseCommand):
    help = "Answer, citation and abstention figures of the chat pipeline on a corpus + questions dataset."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--split", default="test", choices=["dev", "test"])
        parser.add_argument("--assistant", default="", help="Assistant name (default: the default assistant).")
        parser.add_argument("--json", dest="json_out")
        parser.add_argument("--unanswerable", type=float, default=0.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit", type=int, default=0, help="Ask only the first N questions of the split.")
        parser.add_argument("--dev-limit", type=int, default=0, help="With --tune: tune on the first N dev questions.")
        parser.add_argument("--extractive", default="", help="JSON overrides of the extractive parameters.")
        parser.add_argument("--embedding-cache", "--vector-cache", dest="embedding_cache",
                            help="Directory of the evaluation embedding cache (default: $EMBEDDING_CACHE_DIR when set).")
        parser.add_argument("--dump", help="With --tune: write the dev questions' recorded sources to this JSON file.")
        parser.add_argument(
            "--tune", action="store_true",
            help="With --split test: in the same load, first ask the dev questions (their own seeded "
                 "unanswerable share left out too; dev and test share no passage), choose the no-knowledge "
                 "threshold and the extractive parameters on dev, then answer the test questions with them.")

    def handle(self, *args, **options):
        import torch

        # One thread: on a shared machine, torch's thread pool oversubscribed the cores many times over.
        torch.set_num_threads(1)
        from retrieval.management.commands.evaluate_retrieval import Command as RetrievalEvaluation

        directory = Path(options["directory"])
        corpus_path, queries_path = directory / "corpus.jsonl", directory / f"{options['split']}.jsonl"
        if not corpus_path.exists() or not queries_path.exists():
            raise CommandError(f"{directory} needs corpus.jsonl and {options['split']}.jsonl")
        if not 0 <= options["unanswerable"] < 1:
            raise CommandError("--unanswerable is a fraction in [0, 1).")
        corpus = [json.loads(line) for line in corpus_path.open(encoding="utf-8") if line.strip()]
        queries = [json.loads(line) for line in queries_path.open(encoding="utf-8") if line.strip()]
        if options["limit"]:
            queries = queries[: options["limit"]]
        removed = choose_unanswerable(queries, options["unanswerable"], options["seed"])
        dev_queries, dev_removed = [], set()
        if options["tune"]:
            if options["split"] != "test":
                raise CommandError("--tune tunes on dev for a test run: use it with --split test.")
            dev_queries = [json.loads(line) for line in (directory / "dev.jsonl").open(encoding="utf-8") if line.strip()]
            if options["dev_limit"] or options["limit"]:
                dev_queries = dev_queries[: options["dev_limit"] or options["limit"]]
            test_passages = {r for q in queries for r in q["relevant_ids"]}
            if test_passages & {r for q in dev_queries for r in q["relevant_ids"]}:
                raise CommandError("--tune needs dev and test splits that share no passage.")
            dev_removed = choose_unanswerable(dev_queries, options["unanswerable"], options["seed"])
        corpus = [row for row in corpus if row["id"] not in removed | dev_removed]
        from knowledge import embedding

        loader = RetrievalEvaluation()
        loader.stderr = self.stderr
        cache_dir = options.get("embedding_cache") or os.environ.get(embedding.EMBEDDING_CACHE_ENV, "")
        with embedding.vector_cache(cache_dir), loader._throwaway_database():
            user, _kbs, document_ids, _chunks = loader._load(corpus, set())
            dev_report = None
            if options["tune"]:
                dev_report = self._tune(user, dev_queries, document_ids, dev_removed, options)
                options = {**options, "extractive": json.dumps(dev_report["chosen"]["extractive"])}
            report = self._evaluate(user, queries, document_ids, removed, options)
            if dev_report is not None:
                report["dev"] = dev_report
        self._print(report)
        if options["json_out"]:
            Path(options["json_out"]).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")

    def _assistant(self, name: str, options):
        from chat.models import Assistant

        if name:
            assistant = Assistant.objects.filter(name=name).first()
            if assistant is None:
                raise CommandError(f"No assistant named {name!r}.")
        else:
            assistant = Assistant.objects.filter(is_default=True).first()
            if assistant is None:
                raise CommandError("There is no default assistant (run migrate).")
        overrides = dict(assistant.retrieval_settings or {})
        if options["extractive"]:
            overrides["extractive"] = {**overrides.get("extractive", {}), **json.loads(options["extractive"])}
        assistant.retrieval_settings = overrides
        assistant.save(update_fields=["retrieval_settings"])  # rolled back with the load
        return assistant

    def _evaluate(self, user, queries, document_ids, removed, options, *, keep=False):
        rows = self._ask(user, queries, document_ids, removed, options, keep=keep)
        return self._summarize(rows, options)

    def _ask(self, user, queries, document_ids, removed, options, *, keep=False):
        from chat import evaluation as ev
        from chat.pipeline import answer_stream

        assistant = self._assistant(options["assistant"], options)
        vectors = self._vectors(queries)
        rows = []
        started = time.perf_counter()
        for i, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
            t0 = time.perf_counter()
            ttfb = None
            top_score = None
            final = None
            sources = []
            for event in answer_stream(user=user, assistant=assistant, question=query["question"], channel="api",
                                       query_vector=vector):
                if event.type == "sources":
                    top_score = event.top_score
                    sources = event.sources
                elif event.type == "answer" and ttfb is None:
                    ttfb = (time.perf_counter() - t0) * 1000
                elif event.type in ("done", "error"):
                    final = event
            gold_docs = {document_ids[r] for r in query["relevant_ids"] if r in document_ids}
            answerable = not (set(query["relevant_ids"]) & removed)
            row = {"answerable": answerable, "ttfb_ms": ttfb or (time.perf_counter() - t0) * 1000,
                   "top_score": top_score, "abstained": getattr(final, "status", "") == "no_knowledge"}
            if final is not None and final.type == "done" and not row["abstained"]:
                answer = final.answer
                row["contains"] = ev.contains(answer, query["answers"])
                row["f1"] = ev.f1(answer, query["answers"])
                row["length"] = len(ev.strip_markers(answer))
                markers = [int(m) for m in __import__("re").findall(r"\[(\d{1,3})\]", answer)]
                by_marker = {c["n"]: c for c in final.citations}
                row["first_gold"] = bool(markers) and by_marker.get(markers[0], {}).get("document_id") in gold_docs
                golds_norm = [ev.normalize(g) for g in query["answers"]]
                texts = self._texts(final)
                row["markers"] = len(markers)
                row["markers_gold"] = sum(
                    1 for m in markers if any(g and g in ev.normalize(texts.get(m, "")) for g in golds_norm))
            else:
                row.update(contains=False, f1=0.0, length=0, first_gold=False, markers=0, markers_gold=0)
            if keep:
                row["query"] = query
                row["gold_docs"] = gold_docs
                row["sources"] = [(s["n"], s["text"], s["score"], s["document_id"]) for s in sources]
            rows.append(row)
            if (i + 1) % 100 == 0:
                self.stderr.write(f"\rasked {i + 1}/{len(queries)} ({time.perf_counter() - started:.0f}s)", ending="")
        self.stderr.write("")
        return rows

    GRID = [
        {"passages": p, "score_power": sp, "neighbour_weight": nw, "local_idf": li}
        for p in (1, 3) for sp in (1.0, 2.0, 4.0) for nw in (0.0, 0.25) for li in (0.0, 3.0)
    ]
    CURVE = [round(0.01 * i, 2) for i in range(101)]

    @staticmethod
    def _vectors(queries):
        """Questions embedded in one batch, as evaluate_retrieval does: time to first byte excludes it."""
        from knowledge.embedding import encode_queries_for_space
        from retrieval.search import active_search_space

        space = active_search_space()
        if space is None:
            return [None] * len(queries)
        return [v.tolist() for v in encode_queries_for_space(space, [q["question"] for q in queries])]

    def _tune(self, user, queries, document_ids, removed, options):
        """On dev: every question searched as the default assistant searches (the hits the no-answer
        cut withholds kept too), its relevance and the search's threshold recorded; the abstention
        curve of both question kinds across thresholds on that relevance; then the extractive grid
        run offline on the recorded sources (the same pick_sentences the pipeline calls), scored by
        answer-contains + F1 over the answerable questions the search's cut lets through."""
        from chat import evaluation as ev
        from chat.pipeline import assistant_settings
        from llm.extractive import Passage, compose, pick_sentences
        from retrieval.indexing import term_idf
        from retrieval.search import search
        from retrieval.tokenize import tokenize

        from knowledge.policy import knowledge_base_policy

        cfg = assistant_settings(self._assistant(options["assistant"], options))
        readable = knowledge_base_policy.readable_ids(user)  # the IDF counts what the asker may read, as chat does
        rows = []
        for query, vector in zip(queries, self._vectors(queries), strict=True):
            results = search(user, query["question"], k=cfg["k"], mode=cfg["mode"], vector=vector)
            rows.append({
                "question": query["question"], "answers": query["answers"],
                "answerable": not (set(query["relevant_ids"]) & removed),
                "relevance": results.relevance, "threshold": results.threshold, "cut": results.no_answer,
                "gold_docs": sorted(document_ids[r] for r in query["relevant_ids"] if r in document_ids),
                "sources": [(i, h.chunk.text, round(h.score, 4), h.chunk.document_id)
                            for i, h in enumerate(results.ranked_hits, 1)],
                "idf": term_idf(tokenize(query["question"]), readable),
            })
        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]

        def rate(items, abstains):
            return round(sum(map(abstains, items)) / (len(items) or 1), 4)

        curve = []
        for t in self.CURVE:
            def abstains(r, t=t):
                return r["relevance"] is None or r["relevance"] < t
            curve.append({"threshold": t, "abstain_answerable": rate(answerable, abstains),
                          "abstain_unanswerable": rate(unanswerable, abstains)})
        thresholds = sorted({r["threshold"] for r in rows if r["threshold"] is not None})
        at_cut = {"thresholds": thresholds, "abstain_answerable": rate(answerable, lambda r: r["cut"]),
                  "abstain_unanswerable": rate(unanswerable, lambda r: r["cut"])}
        kept = [r for r in answerable if not r["cut"]]
        grid = []
        for params in self.GRID:
            contains = f1 = 0.0
            for r in kept:
                passages = [Passage(n, text, score) for n, text, score, _ in r["sources"]]
                answer = compose(pick_sentences(r["question"], passages, idf=r["idf"], params=params))
                contains += ev.contains(answer, r["answers"])
                f1 += ev.f1(answer, r["answers"])
            n = len(answerable) or 1
            grid.append({"extractive": params, "answer_contains": round(contains / n, 4), "f1": round(f1 / n, 4)})
            self.stderr.write(f"dev grid {params}: contains {contains / n:.4f} f1 {f1 / n:.4f}")
        best = max(grid, key=lambda g: g["answer_contains"] + g["f1"])
        if options.get("dump"):
            Path(options["dump"]).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        return {"questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
                "curve": curve, "at_search_cut": at_cut, "grid": grid,
                "chosen": {"extractive": best["extractive"]}}

    @staticmethod
    def _texts(final) -> dict[int, str]:
        from knowledge.models import Chunk

        ids = {c["n"]: c["chunk_id"] for c in final.citations}
        texts = dict(Chunk.objects.filter(pk__in=ids.values()).values_list("pk", "text"))
        return {n: texts.get(cid, "") for n, cid in ids.items()}

    @staticmethod
    def _summarize(rows, options):
        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]

        def share(items, key):
            return round(sum(1 for r in items if r[key]) / len(items), 4) if items else None

        n = len(answerable) or 1
        markers = sum(r["markers"] for r in answerable)
        answered = [r for r in answerable if not r["abstained"]]
        report = {
            "questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
            "answer_contains": round(sum(1 for r in answerable if r["contains"]) / n, 4),
            "f1": round(sum(r["f1"] for r in answerable) / n, 4),
            "citation_first_gold": round(sum(1 for r in answerable if r["first_gold"]) / n, 4),
            "citation_marker_precision": round(sum(r["markers_gold"] for r in answerable) / markers, 4) if markers else 0.0,
            "abstain_answerable": share(answerable, "abstained"),
            "abstain_unanswerable": share(unanswerable, "abstained"),
            "ttfb_p50_ms": percentile([r["ttfb_ms"] for r in rows], 50),
            "ttfb_p95_ms": percentile([r["ttfb_ms"] for r in rows], 95),
            "mean_answer_chars": round(sum(r["length"] for r in answered) / len(answered), 1) if answered else 0.0,
        }
        return report

    def _print(self, report):
        for key, value in report.items():
            if key != "dev":
                self.stdout.write(f"{key}: {value}")
        dev = report.get("dev")
        if dev:
            self.stdout.write(f"chosen on dev: {dev['chosen']}")
            self.stdout.write(f"dev at the search's no-answer cut {dev['at_search_cut']}")
            for point in dev["curve"]:
                if 0 < point["abstain_answerable"] < 0.5 or 0 < point["abstain_unanswerable"] < 1:
                    self.stdout.write(f"dev threshold {point['threshold']:.2f}: abstain answerable "
                                      f"{point['abstain_answerable']:.3f}, unanswerable {point['abstain_unanswerable']:.3f}")
        self.stdout.write(json.dumps({k: v for k, v in report.items() if k != "dev"}))
