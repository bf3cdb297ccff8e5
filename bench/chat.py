"""Chat pipeline overhead at scale: the time from the request to the sources event and to the first
streamed byte of the answer, not counting the model, at 100,000 chunks (bench/search.py's
synthetic corpus in a throwaway database), for a user who sees all and one who sees 1%.

The model is an in-process backend that answers at once, so what is measured is the pipeline:
checks, storing the turn, retrieval (search()), prompt building in tokens, and the stream setup.
The query vector is given (embedding excluded, as in bench/search.py). Baseline: bare search()
on the same queries in the same process; the ratio says what the chat adds. Last line JSON.

    .venv/bin/python bench/chat.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("bench_search", HERE / "search.py")
bench_search = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_search)  # sets up Django like bench/search.py

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402

from llm.base import Delta, Usage  # noqa: E402
from llm.tokens import estimate_tokens  # noqa: E402


class InstantBackend:
    name = "instant"
    context_window = 8192
    last_usage = Usage()

    def count_tokens(self, text):
        return estimate_tokens(text)

    def stream(self, messages, *, max_tokens=512, temperature=0.0, stop_event=None):
        yield Delta("answer", "ok [1]")

    def complete(self, messages, **kwargs):
        raise AssertionError("no condensing: questions have no history")


def pct(values, q):
    values = sorted(values)
    return round(values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))], 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--profile", action="store_true",
                        help="Also print cProfile's top functions of the chat path (the 'all' user).")
    args = parser.parse_args()
    original = settings.DATABASES["default"]["NAME"]
    bench_search.DB = "bench_chat"
    bench_search.admin_sql("DROP DATABASE IF EXISTS bench_chat")
    bench_search.admin_sql("CREATE DATABASE bench_chat")
    try:
        bench_search.switch_to("bench_chat")
        return run(args)
    finally:
        bench_search.switch_to(original)
        bench_search.admin_sql("DROP DATABASE IF EXISTS bench_chat WITH (FORCE)")


def run(args):
    # Build the corpus with bench/search.py's setup, but with no queries of its own.
    queries = args.queries
    args.queries = 1
    t0 = time.perf_counter()
    bench_search.run(args)
    setup_s = time.perf_counter() - t0
    args.queries = queries

    import chat.pipeline as pipeline
    from accounts.models import User
    from chat.models import Assistant
    from retrieval import search as S

    pipeline.backend_for_endpoint = lambda endpoint, **kw: InstantBackend()
    assistant = Assistant.objects.get(is_default=True)
    assistant.retrieval_settings = {}
    assistant.save()
    from django.db import connection

    from knowledge.policy import knowledge_base_policy

    rng = np.random.default_rng(7)
    results = {"chunks": args.chunks, "queries": queries, "setup_s": round(setup_s, 1)}
    for label, username in (("all", "all"), ("one_percent", "one-percent")):
        user = User.objects.get(username=username)
        # Questions that have an answer the user may read: three words and (about) the vector of a
        # readable chunk, so that search()'s no-answer cut lets them through and the whole path runs.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.text, v.embedding::text FROM knowledge_chunk c JOIN knowledge_chunkvector v ON v.chunk_id = c.id "
                "WHERE c.knowledge_base_id = ANY(%s) ORDER BY md5(c.id::text) LIMIT %s",
                [knowledge_base_policy.readable_ids(user), queries])
            picked = cursor.fetchall()
        # Three of the chunk's words, the rarest it has in bench/search.py's mid-frequency band (ranks
        # 20-3000, as that bench's queries): at 100,000 chunks three random words often named another
        # chunk first for BM25 (weight 4 in the same language), whose cosine fell under the cut; six
        # random ones cost BM25 the posting lists of the most common words (p50 127 ms for search alone).
        def question(text):
            ranks = sorted({int(w[1:]) for w in text.split()}, key=lambda r: (not 20 <= r <= 3000, -r))
            return " ".join(f"w{r}" for r in ranks[:3]) + " ?"

        q_texts = [question(text) for text, _ in picked]
        q_vectors = np.array([json.loads(vec) for _, vec in picked], dtype=np.float32)
        # Noise of norm about 0.2 (0.01 per component of 384): cosine about 0.98 with the chunk, above
        # every no-answer threshold (0.05 per component, norm about 1, gave 0.71: every question was cut).
        q_vectors += 0.01 * rng.normal(size=q_vectors.shape).astype(np.float32)
        q_vectors /= np.linalg.norm(q_vectors, axis=1, keepdims=True)
        # Warm up as a running server is (URL resolver, active space, tokenizer): not measured.
        for event in pipeline.answer_stream(user=user, assistant=assistant, question=q_texts[0], channel="api",
                                            query_vector=q_vectors[0].tolist()):
            pass
        S.search(user, q_texts[0], k=5, mode="hybrid", vector=q_vectors[0].tolist())
        sources, first, search_only, no_knowledge = [], [], [], 0
        profiler = None
        if args.profile and label == "all":
            import cProfile

            profiler = cProfile.Profile()
        for i in range(queries):
            text = q_texts[i % len(q_texts)]
            vector = q_vectors[i % len(q_vectors)].tolist()
            t = time.perf_counter()
            S.search(user, text, k=5, mode="hybrid", vector=vector)
            search_only.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            got_sources = got_first = None
            if profiler is not None:
                profiler.enable()
            for event in pipeline.answer_stream(user=user, assistant=assistant, question=text, channel="api",
                                                query_vector=vector):
                if event.type == "sources" and got_sources is None:
                    got_sources = (time.perf_counter() - t) * 1000
                    no_knowledge += not event.sources
                elif event.type == "answer" and got_first is None:
                    got_first = (time.perf_counter() - t) * 1000
                    if profiler is not None:
                        profiler.disable()
            sources.append(got_sources)
            first.append(got_first if got_first is not None else got_sources)
        entry = {"ttfb_p50_ms": pct(first, 50), "ttfb_p95_ms": pct(first, 95),
                 "sources_p50_ms": pct(sources, 50), "sources_p95_ms": pct(sources, 95),
                 "search_only_p50_ms": pct(search_only, 50), "search_only_p95_ms": pct(search_only, 95)}
        entry["ttfb_over_search_p50"] = round(entry["ttfb_p50_ms"] / entry["search_only_p50_ms"], 2)
        entry["no_knowledge"] = no_knowledge
        if no_knowledge:
            raise SystemExit(f"{no_knowledge} of {queries} questions got the no-knowledge outcome: the whole path did not run")
        if profiler is not None:
            import pstats

            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        results[label] = entry
        print(label, entry, flush=True)
    return results


if __name__ == "__main__":
    out = main()
    print(json.dumps(out))
    sys.exit(0)
