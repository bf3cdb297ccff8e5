import pytest
from django.core.management import call_command
from django.test import Client

from knowledge import services
from knowledge.models import Document, DocumentVersion, KnowledgeBase
from tests.factories import KnowledgeBaseFactory, document, published_document


def api(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, data=None):
    return client.post(url, data or {}, content_type="application/json")


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, name="Credit rules")


def test_manager_creates_a_knowledge_base_and_a_document_through_the_api(people, credit, hr):
    manager = api(people["credit_manager"])
    created = post(manager, "/api/knowledge-bases/", {"name": "贷款手册", "department": credit.pk, "shared_with": [hr.pk]})
    assert created.status_code == 201, created.json()
    kb_id = created.json()["id"]
    assert created.json()["shared_with"] == [hr.pk] and created.json()["review_required"] is True
    assert post(manager, "/api/knowledge-bases/", {"name": "x", "department": hr.pk}).status_code == 403
    employee = api(people["credit_employee"])
    assert post(employee, "/api/knowledge-bases/", {"name": "x", "department": credit.pk}).status_code == 403

    doc = post(
        manager, "/api/documents/", {"knowledge_base": kb_id, "title": "Limits", "content": "# 额度\n", "tags": ["loans"]}
    )
    assert doc.status_code == 201, doc.json()
    body = doc.json()
    assert (body["state"], body["latest_version"]["number"], body["live_version"]) == ("draft", 1, None)
    assert body["tags"] == ["loans"]
    # A knowledge base the user cannot edit reads as unknown, not as forbidden.
    hr_kb = KnowledgeBaseFactory(department=hr)
    refused = post(manager, "/api/documents/", {"knowledge_base": hr_kb.pk, "title": "t", "content": "c"})
    assert refused.status_code == 400 and "knowledge_base" in refused.json()

    patched = manager.patch(
        f"/api/knowledge-bases/{kb_id}/",
        {"shared_company_wide": True, "department": hr.pk},
        content_type="application/json",
    )
    assert patched.status_code == 200
    assert KnowledgeBase.objects.get(pk=kb_id).department == credit  # the owner does not change by PATCH
    assert KnowledgeBase.objects.get(pk=kb_id).shared_company_wide is True


def test_stale_edit_gets_409_with_the_latest_version_and_the_rejected_text(kb, people):
    doc = document(kb, people["credit_manager"], content="v1")
    manager = api(people["credit_manager"])
    first = post(manager, f"/api/documents/{doc.pk}/versions/", {"content": "v2 by A", "base_version": 1})
    assert first.status_code == 201 and first.json()["number"] == 2
    stale = post(manager, f"/api/documents/{doc.pk}/versions/", {"content": "v2 by B", "base_version": 1})
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "version_conflict" and body["base_version"] == 1
    assert (body["latest"]["number"], body["latest"]["content"]) == (2, "v2 by A")
    assert body["content"] == "v2 by B"
    assert list(DocumentVersion.objects.filter(document=doc).values_list("content", flat=True).order_by("number")) == [
        "v1",
        "v2 by A",
    ]


def test_versions_are_read_only_over_the_api(kb, people):
    doc = document(kb, people["credit_manager"])
    client = api(people["superuser"])
    url = f"/api/versions/{doc.latest_version_id}/"
    assert client.get(url).json()["content"] == "v1 text"
    assert client.put(url, {"content": "x"}, content_type="application/json").status_code == 405
    assert client.patch(url, {"content": "x"}, content_type="application/json").status_code == 405
    assert client.delete(url).status_code == 405
    assert post(client, "/api/versions/", {"document": doc.pk, "content": "x"}).status_code == 405
    assert client.delete(f"/api/documents/{doc.pk}/").status_code == 405
    assert DocumentVersion.objects.get(pk=doc.latest_version_id).content == "v1 text"


def test_diff_endpoint_compares_two_versions_word_by_word(kb, people):
    doc = document(kb, people["credit_manager"], content="The rate is 3 percent.\n贷款利率为三个百分点。\n")
    services.document_version_create(
        actor=people["credit_manager"], document=doc,
        content="The rate is 5 percent.\n贷款利率为五个百分点。\n", base_version_number=1,
    )
    client = api(people["credit_reviewer"])
    response = client.get(f"/api/documents/{doc.pk}/diff/", {"from": 1, "to": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["from_version"]["number"], body["to_version"]["number"]) == (1, 2)
    flat = str(body["diff"])
    assert "5" in flat and "3" in flat
    assert client.get(f"/api/documents/{doc.pk}/diff/", {"from": 1, "to": 9}).status_code == 404
    assert client.get(f"/api/documents/{doc.pk}/diff/", {"from": 1}).status_code == 400


def test_submit_approve_and_request_changes_over_the_api(kb, people):
    doc = document(kb, people["credit_manager"])
    manager, reviewer = api(people["credit_manager"]), api(people["credit_reviewer"])
    submitted = post(manager, f"/api/documents/{doc.pk}/submit/")
    assert submitted.status_code == 200 and submitted.json()["state"] == "open"
    review_id = submitted.json()["id"]
    assert post(manager, f"/api/documents/{doc.pk}/submit/").status_code == 409  # already in review
    assert [r["id"] for r in reviewer.get("/api/reviews/", {"state": "open"}).json()["results"]] == [review_id]

    assert post(reviewer, f"/api/reviews/{review_id}/request-changes/", {}).status_code == 400  # comment required
    changed = post(reviewer, f"/api/reviews/{review_id}/request-changes/", {"comment": "Add the source."})
    assert changed.status_code == 200 and changed.json()["state"] == "changes_requested"
    assert post(reviewer, f"/api/reviews/{review_id}/approve/").status_code == 409  # closed

    review_id = post(manager, f"/api/documents/{doc.pk}/submit/").json()["id"]
    approved = post(reviewer, f"/api/reviews/{review_id}/approve/", {"comment": "好"})
    assert approved.status_code == 200 and approved.json()["decided_by_username"] == "credit_reviewer"
    body = manager.get(f"/api/documents/{doc.pk}/").json()
    assert body["state"] == "published" and body["live_version"]["number"] == 1


def test_rollback_and_archive_over_the_api(kb, people):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"], content="old")
    services.document_version_create(
        actor=people["credit_manager"], document=doc, content="new", base_version_number=1, change_note="n"
    )
    manager = api(people["credit_manager"])
    assert post(manager, f"/api/documents/{doc.pk}/rollback/", {"to_number": 9}).status_code == 400
    restored = post(manager, f"/api/documents/{doc.pk}/rollback/", {"to_number": 1})
    assert restored.status_code == 201
    body = restored.json()
    assert (body["number"], body["content"], body["change_note"]) == (3, "old", "rolled back to v1")
    assert manager.get(f"/api/documents/{doc.pk}/").json()["state"] == "in_review"
    reviewer = api(people["credit_reviewer"])
    assert post(reviewer, f"/api/documents/{doc.pk}/rollback/", {"to_number": 1}).status_code == 403

    assert post(manager, f"/api/documents/{doc.pk}/archive/").json()["reason"]  # published: a reason is required
    archived = post(manager, f"/api/documents/{doc.pk}/archive/", {"reason": "superseded"})
    assert archived.status_code == 200 and archived.json()["state"] == "archived"
    assert post(manager, f"/api/documents/{doc.pk}/archive/", {"reason": "again"}).status_code == 409
    stale = post(manager, f"/api/documents/{doc.pk}/versions/", {"content": "x", "base_version": 3, "change_note": "n"})
    assert stale.status_code == 409 and stale.json()["code"] == "archived"


def test_metadata_patch_and_document_list_filters(kb, people):
    manager = people["credit_manager"]
    a = document(kb, manager, title="Mortgage limits", tags=["loans"])
    document(kb, manager, title="Holiday calendar", tags=["hr"])
    client = api(manager)
    patched = client.patch(f"/api/documents/{a.pk}/", {"tags": ["loans", "贷款"]}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["tags"] == ["loans", "贷款"]
    assert Document.objects.get(pk=a.pk).versions.count() == 1

    def titles(**params):
        return [d["title"] for d in client.get("/api/documents/", params).json()["results"]]

    assert titles(q="mortgage") == ["Mortgage limits"]
    assert titles(tag="贷款") == ["Mortgage limits"]
    assert titles(state="published") == []
    assert titles(ordering="title") == ["Holiday calendar", "Mortgage limits"]
    assert titles(knowledge_base=kb.pk, ordering="-title") == ["Mortgage limits", "Holiday calendar"]
    assert client.get("/api/documents/", {"state": "bogus"}).status_code == 400


def test_file_download_is_served_and_audited(kb, people, settings, tmp_path):
    from django.core.files.base import ContentFile

    from core.models import AuditEntry

    settings.MEDIA_ROOT = str(tmp_path)
    doc = services.document_create(
        actor=people["credit_manager"], knowledge_base=kb, title="Scan", content="text",
        original_file=ContentFile(b"%PDF-1.4 fake", name="scan.pdf"),
    )
    version = doc.latest_version
    assert (version.file_name, version.file_size, version.file_mime) == ("scan.pdf", 13, "application/pdf")
    client = api(people["credit_reviewer"])
    response = client.get(f"/api/versions/{version.pk}/file/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 fake"
    assert 'filename="scan.pdf"' in response["Content-Disposition"]
    assert AuditEntry.objects.filter(action="download", version=version, actor=people["credit_reviewer"]).count() == 1
    no_file = document(kb, people["credit_manager"])
    assert client.get(f"/api/versions/{no_file.latest_version_id}/file/").status_code == 404


def test_openapi_schema_lists_the_knowledge_endpoints_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/knowledge-bases/", "/api/documents/", "/api/documents/{id}/versions/", "/api/documents/{id}/diff/",
        "/api/documents/{id}/rollback/", "/api/versions/", "/api/versions/{id}/file/", "/api/reviews/{id}/approve/",
        "/api/reviews/{id}/request-changes/", "/api/audit/",
    ):
        assert path in text, path


def test_document_list_query_count_does_not_grow_with_the_page(kb, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    manager = people["credit_manager"]
    client = api(people["credit_employee"])

    def count_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/documents/", {"limit": 50}).json()
        return len(queries), len(body["results"])

    for _ in range(2):
        published_document(kb, manager, people["credit_reviewer"])
    few, shown = count_queries()
    for _ in range(8):
        published_document(kb, manager, people["credit_reviewer"])
    many, shown_many = count_queries()
    assert (shown, shown_many) == (2, 10)
    assert many == few
