"""Knowledge pages under load: 10,000 documents with 5 versions each.

Creates a throwaway database (dropped at the end), bulk-inserts the documents and versions,
then requests the document list, the history page and the diff page with Django's test client
(the whole middleware stack, templates included) and reports p50/p95 latency and the number of
SQL queries per request. Each page is measured at two sizes (list: 20 and 100 rows per page;
history: 5 and 50 versions; diff: a short and a long text) to show that the query count does
not grow with the page size. Prints a table and a final JSON line.

A last row measures a reviewer's approve (POST through the whole stack) while an ingest worker
writes a 256-version batch in another connection (`--only approve` runs that row alone): the
approves start once the batch's index transaction is open, so any lock they share with it shows
as waiting time.

    .venv/bin/python bench/knowledge_pages.py [--documents 10000] [--versions 5] [--repeat 30]
    .venv/bin/python bench/knowledge_pages.py --only approve [--batch 256]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

BENCH_DATABASE = os.environ.get("BENCH_DATABASE_NAME", "bench_knowledge_pages")

PARAGRAPHS = [
    "贷款审批需要两名信贷员复核，金额超过五百万元的申请须报风险管理委员会批准。",
    "Loan applications above the regional limit need a second review by the credit committee.",
    "客户身份识别应在开户时完成，并在信息变更后的三十日内更新。",
    "Collateral is revalued every twelve months; residential property uses the bank's approved valuers.",
    "利率调整以中国人民银行公布的贷款市场报价利率为基准，按季度执行。",
    "Exceptions are recorded in the exception register with the approver's name and the reason.",
]


def make_content(doc_index: int, version: int, paragraphs: int = 8) -> str:
    lines = [f"# Policy {doc_index}", ""]
    for p in range(paragraphs):
        text = PARAGRAPHS[(doc_index + p) % len(PARAGRAPHS)]
        if p == version % paragraphs:
            text = text.replace("两名", f"{version + 1}名").replace("second", f"number {version + 1}")
        lines += [f"{p + 1}. {text} (rev {version if p % 3 == 0 else 1})", ""]
    lines.append(f"| item | value |\n|---|---|\n| limit | {doc_index * 10 + version} |")
    return "\n".join(lines)


def populate(documents: int, versions: int):
    from accounts.models import Department, Membership, Role, User
    from knowledge.models import Document, DocumentState, DocumentVersion, KnowledgeBase, sha256_text

    department = Department.objects.create(name="Credit", code="credit")
    manager = User.objects.create(username="bench_manager")
    Membership.objects.create(user=manager, department=department, role=Role.KNOWLEDGE_MANAGER)
    kb = KnowledgeBase.objects.create(name="Bench", department=department, created_by=manager)

    started = time.perf_counter()
    docs = Document.objects.bulk_create(
        [
            Document(
                knowledge_base=kb, title=f"Policy {i:05d}", tags=["bench", f"group{i % 10}"], owner=manager,
                state=DocumentState.PUBLISHED,
            )
            for i in range(documents)
        ],
        batch_size=2000,
    )
    previous: list = [None] * len(docs)
    for number in range(1, versions + 1):
        level = []
        for i, doc in enumerate(docs):
            content = make_content(i, number)
            level.append(
                DocumentVersion(
                    document=doc, number=number, parent=previous[i], content=content,
                    content_sha256=sha256_text(content), author=manager, change_note=f"edit {number}",
                )
            )
        previous = DocumentVersion.objects.bulk_create(level, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE knowledge_document d SET latest_version_id = v.id, live_version_id = v.id
               FROM knowledge_documentversion v WHERE v.document_id = d.id AND v.number = %s""",
            [versions],
        )
        cursor.execute("ANALYZE knowledge_document; ANALYZE knowledge_documentversion;")
    # One document with a long history, and one with a long text, for the second size.
    long_history = docs[0]
    long_history_versions = 50
    parent = previous[0]
    extra = []
    for number in range(versions + 1, long_history_versions + 1):
        content = make_content(0, number)
        parent = DocumentVersion.objects.create(
            document=long_history, number=number, parent=parent, content=content, author=manager,
            change_note=f"edit {number}",
        )
        extra.append(parent)
    Document.objects.filter(pk=long_history.pk).update(latest_version=parent, live_version=parent)
    long_text = docs[1]
    base = DocumentVersion.objects.get(document=long_text, number=versions)
    big_old = "\n\n".join(make_content(j, 1) for j in range(40))
    big_new = "\n\n".join(make_content(j, 2 if j % 4 == 0 else 1) for j in range(40))
    v_old = DocumentVersion.objects.create(document=long_text, number=versions + 1, parent=base, content=big_old,
                                           author=manager, change_note="long")
    v_new = DocumentVersion.objects.create(document=long_text, number=versions + 2, parent=v_old, content=big_new,
                                           author=manager, change_note="long 2")
    Document.objects.filter(pk=long_text.pk).update(latest_version=v_new, live_version=v_new)
    elapsed = time.perf_counter() - started
    return {
        "manager": manager,
        "kb": kb,
        "short_history": docs[2],
        "long_history": long_history,
        "long_text": long_text,
        "long_text_numbers": (v_old.number, v_new.number),
        "long_history_versions": long_history_versions,
        "populate_s": elapsed,
        "rows": documents * versions + (long_history_versions - versions) + 2,
    }


def measure(client: Client, url: str, repeat: int) -> dict:
    for _ in range(3):  # warm caches, jieba's dictionary, template loading
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    reset_queries()  # the log is a bounded deque: start from empty
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured.captured_queries)  # read now: the next request clears the log
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    timings.sort()
    return {
        "queries": queries,
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[min(len(timings) - 1, int(round(0.95 * len(timings))) - 1)], 1),
        "bytes": len(response.content),
    }


_BATCH_WINDOW_FILE = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_approve_window_{os.getpid()}.txt"


def _ingest_batch(database: str, version_ids: list[int], indexing_started, written) -> None:
    """Child process: ingest the versions as one batch, signalling when the index stage starts."""
    from knowledge.ingestion import services as ingest_services
    from knowledge.ingestion import stages

    connection.settings_dict["NAME"] = database
    # Patched where the index stage looks it up (stages imports the name; patching
    # retrieval.indexing's attribute would never fire and no approve would overlap the stage).
    original = stages.index_chunks
    window = []

    def timed_index_chunks(**kwargs):
        # The batch's index stage: chunks and vectors are written, postings and statistics next.
        if not window:
            window.append(time.perf_counter())
            indexing_started.set()
        return original(**kwargs)

    stages.index_chunks = timed_index_chunks
    try:
        ingest_services.versions_ingest_run(version_ids=version_ids)
    finally:
        window.append(time.perf_counter())
        written.set()
        indexing_started.set()
        Path(os.environ.get("TMPDIR", "/tmp"), f"bench_approve_window_{os.getppid()}.txt").write_text(
            f"{window[0]} {window[-1]}"
        )


IDLE_APPROVES = 8


def measure_approve_during_batch(batch: int, approves: int = 48) -> dict:
    """Approve `approves` reviews, one after another, while a `batch`-version ingestion writes its
    chunks and postings in another process (its own database connection)."""
    from accounts.models import Department, Membership, Role, User
    from config.celery import app
    from knowledge.ingestion import services as ingest_services
    from knowledge.models import KnowledgeBase, Review, ReviewState
    from knowledge.services import document_create, document_submit, document_version_create, review_approve

    app.conf.broker_url = "memory://"  # the services' dispatches go nowhere: this bench runs the batch itself
    department = Department.objects.create(name="Approve bench", code="approve_bench")
    manager = User.objects.create(username="approve_manager")
    reviewer = User.objects.create(username="approve_reviewer")
    Membership.objects.create(user=manager, department=department, role=Role.KNOWLEDGE_MANAGER)
    Membership.objects.create(user=reviewer, department=department, role=Role.COMPLIANCE_REVIEWER)
    kb = KnowledgeBase.objects.create(name="Approve bench", department=department, created_by=manager)
    # Documents with an indexed, live v1 and an indexed v2 in review: approving one moves its
    # chunks' searchable flags, i.e. it writes the BM25 statistics.
    docs = [
        document_create(actor=manager, knowledge_base=kb, title=f"Reviewed {i}", content=make_content(i, 1, 3))
        for i in range(approves)
    ]
    ingest_services.versions_ingest_run(version_ids=[d.latest_version_id for d in docs])
    for doc in docs:
        review_approve(actor=reviewer, review=document_submit(actor=manager, document=doc))
        doc.refresh_from_db()
    v2 = [
        document_version_create(actor=manager, document=d, content=make_content(i, 2, 3), base_version_number=1,
                                change_note="v2")
        for i, d in enumerate(docs)
    ]
    ingest_services.versions_ingest_run(version_ids=[v.pk for v in v2])
    reviews = [document_submit(actor=manager, document=d) for d in docs]
    # The batch: new documents whose versions an ingest worker takes together.
    batch_ids = [
        document_create(actor=manager, knowledge_base=kb, title=f"Batch {i}", content=make_content(i, 1, 4)).latest_version_id
        for i in range(batch)
    ]
    # The batch runs in another process, as an ingest worker does (a thread would share the GIL).
    context = multiprocessing.get_context("spawn")
    indexing_started, written = context.Event(), context.Event()
    client = Client()
    client.force_login(reviewer)
    client.get(f"/knowledge/reviews/{reviews[0].pk}/")  # warm the page
    batch_process = context.Process(
        target=_ingest_batch, args=(connection.settings_dict["NAME"], batch_ids, indexing_started, written)
    )
    # Baseline: the same approve with no batch running.
    idle = []
    for review in reviews[:IDLE_APPROVES]:
        start = time.perf_counter()
        assert client.post(f"/knowledge/reviews/{review.pk}/approve/", {"comment": "ok"}).status_code in (200, 302)
        idle.append((time.perf_counter() - start) * 1000)
    reviews = reviews[IDLE_APPROVES:]
    timings, during = [], 0
    batch_process.start()
    indexing_started.wait()
    # Approve back to back until the batch has committed (and at least three times).
    for review in reviews:
        if written.is_set() and len(timings) >= 3:
            break
        busy = not written.is_set()
        start = time.perf_counter()
        response = client.post(f"/knowledge/reviews/{review.pk}/approve/", {"comment": "ok"})
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 302), response.status_code
        during += busy
    batch_process.join()
    assert batch_process.exitcode == 0
    window = _BATCH_WINDOW_FILE.read_text().split()
    approved = [r.pk for r in reviews[: len(timings)]]
    idle.sort()
    assert Review.objects.filter(pk__in=approved, state=ReviewState.APPROVED).count() == len(approved)
    timings.sort()
    return {
        "page": "approve",
        "size": f"while a {batch}-version batch indexes",
        "queries": None,
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[min(len(timings) - 1, int(round(0.95 * len(timings))) - 1)], 1),
        "max_ms": round(max(timings), 1),
        "idle_p50_ms": round(statistics.median(idle), 1),
        "idle_max_ms": round(max(idle), 1),
        "approves": len(timings),
        "approves_during_index_stage": during,
        "batch_index_stage_s": round(float(window[1]) - float(window[0]), 2),
        "bytes": 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256, help="versions in the ingestion batch of the approve row")
    parser.add_argument("--only", choices=["pages", "approve"], help="run only the page rows or only the approve row")
    args = parser.parse_args()

    setup_test_environment(debug=False)  # measure what production runs: no query log, no debug pages
    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    results = []
    data = {"rows": 0, "populate_s": 0.0}
    try:
        if args.only != "approve":
            data = populate(args.documents, args.versions)
            results += measure_pages(data, args)
        if args.only != "pages":
            results.append(measure_approve_during_batch(args.batch))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    report(results, data, args)
    constant = {}
    for page in ("document list", "history", "diff"):
        counts = {r["queries"] for r in results if r["page"] == page}
        constant[page] = len(counts) <= 1
    verdict = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in constant.items())
    print("\nquery count constant across sizes:", verdict)
    print(
        json.dumps(
            {
                "bench": "knowledge_pages",
                "documents": args.documents if args.only != "approve" else 0,
                "versions_per_document": args.versions,
                "populate_s": round(data["populate_s"], 1),
                "results": results,
                "query_count_constant": constant,
            }
        )
    )
    overlapped = all(r["approves_during_index_stage"] > 0 for r in results if r["page"] == "approve")
    if not overlapped:
        print("no approve overlapped the batch's index stage: the approve row measured nothing")
    return 0 if all(constant.values()) and overlapped else 1


def measure_pages(data: dict, args) -> list[dict]:
    client = Client()
    client.force_login(data["manager"])
    kb, short, long_h, long_t = data["kb"], data["short_history"], data["long_history"], data["long_text"]
    a, b = data["long_text_numbers"]
    kb_url, short_url = f"/knowledge/bases/{kb.pk}/", f"/knowledge/documents/{short.pk}/"
    last = args.versions
    cases = [
        ("document list", "20 rows", f"{kb_url}?per_page=20"),
        ("document list", "100 rows", f"{kb_url}?per_page=100"),
        ("document list", "100 rows, tag+sort, page 8", f"{kb_url}?per_page=100&tag=group3&order=title&page=8"),
        ("history", f"{args.versions} versions", f"{short_url}history/"),
        ("history", f"{data['long_history_versions']} versions", f"/knowledge/documents/{long_h.pk}/history/"),
        ("diff", "short text, side by side", f"{short_url}diff/?a={last - 1}&b={last}"),
        ("diff", "short text, inline", f"{short_url}diff/?a={last - 1}&b={last}&view=inline"),
        ("diff", "long text (~40x), whole text", f"/knowledge/documents/{long_t.pk}/diff/?a={a}&b={b}&full=1"),
    ]
    results = []
    for page, size, url in cases:
        results.append({"page": page, "size": size, **measure(client, url, args.repeat)})
    return results


def report(results: list[dict], data: dict, args) -> None:
    print(
        "" if args.only == "approve" else f"\n{args.documents} documents x {args.versions} versions ({data['rows']} version rows) "
        f"inserted in {data['populate_s']:.1f}s; {args.repeat} requests per row\n"
    )
    header = f"{'page':<15}{'size':<32}{'queries':>8}{'p50 ms':>9}{'p95 ms':>9}{'KiB':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['page']:<15}{r['size']:<32}{r['queries'] if r['queries'] is not None else '-':>8}"
            f"{r['p50_ms']:>9}{r['p95_ms']:>9}{r['bytes'] / 1024:>8.0f}"
        )
        if r["page"] == "approve":
            print(
                f"{'':<15}max {r['max_ms']} ms over {r['approves']} approves, {r['approves_during_index_stage']} "
                f"during the batch's index stage ({r['batch_index_stage_s']} s); with no batch: "
                f"p50 {r['idle_p50_ms']} ms, max {r['idle_max_ms']} ms"
            )


if __name__ == "__main__":
    sys.exit(main())
