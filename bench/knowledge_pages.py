"""Knowledge pages under load: 10,000 documents with 5 versions each.

Creates a throwaway database (dropped at the end), bulk-inserts the documents and versions,
then requests the document list, the history page and the diff page with Django's test client
(the whole middleware stack, templates included) and reports p50/p95 latency and the number of
SQL queries per request. Each page is measured at two sizes (list: 20 and 100 rows per page;
history: 5 and 50 versions; diff: a short and a long text) to show that the query count does
not grow with the page size. Prints a table and a final JSON line.

    .venv/bin/python bench/knowledge_pages.py [--documents 10000] [--versions 5] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    setup_test_environment(debug=False)  # measure what production runs: no query log, no debug pages
    connection.settings_dict.setdefault("TEST", {})["NAME"] = BENCH_DATABASE
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        data = populate(args.documents, args.versions)
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
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    print(
        f"\n{args.documents} documents x {args.versions} versions ({data['rows']} version rows) "
        f"inserted in {data['populate_s']:.1f}s; {args.repeat} requests per row\n"
    )
    header = f"{'page':<15}{'size':<32}{'queries':>8}{'p50 ms':>9}{'p95 ms':>9}{'KiB':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['page']:<15}{r['size']:<32}{r['queries']:>8}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['bytes'] / 1024:>8.0f}"
        )
    constant = {}
    for page in ("document list", "history", "diff"):
        counts = {r["queries"] for r in results if r["page"] == page}
        constant[page] = len(counts) == 1
    verdict = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in constant.items())
    print("\nquery count constant across sizes:", verdict)
    print(
        json.dumps(
            {
                "bench": "knowledge_pages",
                "documents": args.documents,
                "versions_per_document": args.versions,
                "populate_s": round(data["populate_s"], 1),
                "results": results,
                "query_count_constant": constant,
            }
        )
    )
    return 0 if all(constant.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
