"""Ask every question of a dataset through the real chat pipeline and measure the answers.

The corpus is loaded as evaluate_retrieval loads it (same loader: throwaway department, user and
knowledge base, real ingestion, all rolled back at the end). With --unanswerable F, a seeded share
F of the questions has its gold passages left out of the corpus: same subjects and language,
but no answer in the knowledge base.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

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
        parser.add_argument("--min-score", type=float, default=None, help="Override the no-knowledge threshold.")
        parser.add_argument("--extractive", default="", help="JSON overrides of the extractive parameters.")
        parser.add_argument("--curve", default="", help="Comma-separated thresholds: abstention rates at each.")
        parser.add_argument("--shared-database", action="store_true",
                            help="Load into the project database (inside a rolled-back transaction) instead of a "
                                 "throwaway database; the BM25 statistics row stays locked until it ends.")
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
        if options["shared_database"]:
            return self._run(corpus, queries, removed, dev_queries, dev_removed, options)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, connections

        original = settings.DATABASES["default"]["NAME"]
        name = f"evaluate_chat_{os.getpid()}"

        def switch(db):
            connections.close_all()
            settings.DATABASES["default"]["NAME"] = db
            connection.settings_dict["NAME"] = db

        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        try:
            switch(name)
            call_command("migrate", verbosity=0, interactive=False)
            return self._run(corpus, queries, removed, dev_queries, dev_removed, options)
        finally:
            switch(original)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _run(self, corpus, queries, removed, dev_queries, dev_removed, options):
        from retrieval.management.commands.evaluate_retrieval import Command as RetrievalEvaluation

        loader = RetrievalEvaluation()
        loader.stderr = self.stderr
        with transaction.atomic():
            user, kb, document_ids = loader._load(corpus)
            dev_report = None
            if options["tune"]:
                dev_report = self._tune(user, dev_queries, document_ids, dev_removed, options)
                options = {**options, "min_score": dev_report["chosen"]["min_score"],
                           "extractive": json.dumps(dev_report["chosen"]["extractive"]), "curve": ""}
            report = self._evaluate(user, queries, document_ids, removed, options)
            if dev_report is not None:
                report["dev"] = dev_report
            transaction.set_rollback(True)
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
        if options["min_score"] is not None:
            overrides["min_score"] = options["min_score"]
        if options["extractive"]:
            overrides["extractive"] = {**overrides.get("extractive", {}), **json.loads(options["extractive"])}
        if options["curve"]:
            overrides["min_score"] = 0.0  # every question answered; abstention computed per threshold
        assistant.retrieval_settings = overrides
        assistant.save(update_fields=["retrieval_settings"])  # rolled back with the load
        return assistant

    def _evaluate(self, user, queries, document_ids, removed, options, *, keep=False):
        rows = self._ask(user, queries, document_ids, removed, options, keep=keep)
        return self._summarize(rows, options)

    def _ask(self, user, queries, document_ids, removed, options, *, keep=False):
        from chat import evaluation as ev
        from chat.pipeline import answer_stream

        from knowledge.embedding import encode_for_space
        from retrieval.search import active_search_space

        assistant = self._assistant(options["assistant"], options)
        # Questions embedded in one batch, as evaluate_retrieval does: time to first byte excludes it.
        space = active_search_space()
        vectors = [None] * len(queries)
        if space is not None:
            vectors = [v.tolist() for v in encode_for_space(space, [q["question"] for q in queries])]
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
        {"passages": p, "score_power": sp, "neighbour_weight": nw, "max_sentences": ms}
        for p in (1, 3) for sp in (1.0, 2.0, 4.0) for nw in (0.0, 0.25) for ms in (1, 2)
    ]

    def _tune(self, user, queries, document_ids, removed, options):
        """On dev: every question answered (threshold 0) to record its best score and sources; the
        abstention curve; the highest threshold that keeps answerable abstention <= 0.05; then
        the extractive grid re-run offline on the recorded sources (the same pick_sentences the
        pipeline calls), scored by answer-contains + F1 over answerable questions."""
        from chat import evaluation as ev
        from llm.extractive import Passage, compose, pick_sentences, term_idf
        from retrieval.tokenize import tokenize

        thresholds = [float(x) for x in (options["curve"] or ",".join(f"{x / 40:.3f}" for x in range(0, 25))).split(",") if x]
        rows = self._ask(user, queries, document_ids, removed, {**options, "min_score": 0.0, "curve": ""}, keep=True)
        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]
        curve = []
        for t in thresholds:
            def abstains(r, t=t):
                return r["top_score"] is None or r["top_score"] < t
            curve.append({"min_score": t,
                          "abstain_answerable": round(sum(map(abstains, answerable)) / (len(answerable) or 1), 4),
                          "abstain_unanswerable": round(sum(map(abstains, unanswerable)) / (len(unanswerable) or 1), 4)})
        # A margin under the goal of .05, so that the test split stays under it.
        ok = [p for p in curve if p["abstain_answerable"] <= 0.03]
        chosen_threshold = max((p["min_score"] for p in ok), default=0.0)
        grid = []
        kept = [r for r in answerable if r["top_score"] is not None and r["top_score"] >= chosen_threshold]
        idfs = [term_idf(tokenize(r["query"]["question"])) for r in kept]
        for params in self.GRID:
            contains = f1 = 0.0
            for r, idf in zip(kept, idfs, strict=True):
                passages = [Passage(n, text, score) for n, text, score, _ in r["sources"]]
                answer = compose(pick_sentences(r["query"]["question"], passages, idf=idf, params=params))
                contains += ev.contains(answer, r["query"]["answers"])
                f1 += ev.f1(answer, r["query"]["answers"])
            n = len(answerable) or 1
            grid.append({"extractive": params, "answer_contains": round(contains / n, 4), "f1": round(f1 / n, 4)})
            self.stderr.write(f"dev grid {params}: contains {contains / n:.4f} f1 {f1 / n:.4f}")
        best = max(grid, key=lambda g: g["answer_contains"] + g["f1"])
        return {"questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
                "curve": curve, "grid": grid,
                "chosen": {"min_score": chosen_threshold, "extractive": best["extractive"]}}

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
        if options["curve"]:
            curve = []
            for t in [float(x) for x in options["curve"].split(",") if x]:
                def abstains(r, t=t):
                    return r["top_score"] is None or r["top_score"] < t
                curve.append({
                    "min_score": t,
                    "abstain_answerable": round(sum(1 for r in answerable if abstains(r)) / (len(answerable) or 1), 4),
                    "abstain_unanswerable": round(sum(1 for r in unanswerable if abstains(r)) / (len(unanswerable) or 1), 4),
                })
            report["curve"] = curve
        return report

    def _print(self, report):
        for key, value in report.items():
            if key not in ("curve", "dev"):
                self.stdout.write(f"{key}: {value}")
        if "dev" in report:
            self.stdout.write(f"chosen on dev: {report['dev']['chosen']}")
        for point in report.get("curve", []) + report.get("dev", {}).get("curve", []):
            self.stdout.write(f"min_score {point['min_score']:.3f}: abstain answerable {point['abstain_answerable']:.3f}, "
                              f"unanswerable {point['abstain_unanswerable']:.3f}")
        self.stdout.write(json.dumps({k: v for k, v in report.items() if k not in ("curve", "dev")}))
