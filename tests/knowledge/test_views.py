"""The knowledge pages as users see them: what renders for whom, and what is 404."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge import services
from knowledge.models import Document, DocumentState, DocumentVersion, EditLock, Review, ReviewState
from tests.factories import KnowledgeBaseFactory, document, published_document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def kb(credit, people):
    return KnowledgeBaseFactory(name="Credit policies", department=credit)


@pytest.fixture
def doc(kb, people):
    """Published v1 (with its original file), then a draft v2 by the manager."""
    manager = people["credit_manager"]
    upload = SimpleUploadedFile("policy.md", "# Loans\n\nRate is 3.5%.\n".encode(), content_type="text/markdown")
    d = published_document(
        kb, manager, people["credit_reviewer"], content="# Loans\n\nRate is 3.5%.\n", title="Loan policy",
        tags=["loans", "rates"], original_file=upload,
    )
    services.document_version_create(
        actor=manager, document=d, content="# Loans\n\nRate is 4.0%.\n", base_version_number=1, change_note="rate up"
    )
    return Document.objects.get(pk=d.pk)


def _urls(doc):
    return {
        "document": reverse("knowledge:document", args=[doc.pk]),
        "history": reverse("knowledge:history", args=[doc.pk]),
        "diff": reverse("knowledge:diff", args=[doc.pk]) + "?a=1&b=2",
        "version": reverse("knowledge:version", args=[doc.pk, 1]),
        "file": reverse("knowledge:version_file", args=[doc.pk, 1]),
        "csv": reverse("knowledge:compliance_csv") + f"?document={doc.pk}",
        "print": reverse("knowledge:compliance_print") + f"?document={doc.pk}",
        "edit": reverse("knowledge:document_edit", args=[doc.pk]),
        "lock": reverse("knowledge:edit_lock", args=[doc.pk]),
    }


# --- pages render for the people allowed to see them --------------------------------------------


def test_index_lists_readable_knowledge_bases_and_create_form_for_managers(client_for, people, kb):
    page = client_for(people["credit_manager"]).get(reverse("knowledge:index"))
    assert page.status_code == 200
    assert b"Credit policies" in page.content
    assert b'id="new-knowledge-base"' in page.content

    page = client_for(people["credit_employee"]).get(reverse("knowledge:index"))
    assert b"Credit policies" in page.content
    assert b'id="new-knowledge-base"' not in page.content

    page = client_for(people["hr_employee"]).get(reverse("knowledge:index"))
    assert b"Credit policies" not in page.content


def test_manager_creates_a_knowledge_base(client_for, people, credit, hr):
    client = client_for(people["credit_manager"])
    response = client.post(
        reverse("knowledge:knowledge_base_create"),
        {"name": "Procedures", "department": credit.pk, "review_required": "on", "shared_with": [hr.pk]},
    )
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert b"Procedures" in page.content


def test_employee_cannot_create_a_knowledge_base(client_for, people, credit):
    response = client_for(people["credit_employee"]).post(
        reverse("knowledge:knowledge_base_create"), {"name": "Nope", "department": credit.pk}
    )
    assert response.status_code == 403


def test_document_list_search_sort_and_paginate(client_for, people, kb):
    manager = people["credit_manager"]
    for i in range(25):
        document(kb, manager, title=f"Memo {i:02d}", tags=["memo"] if i % 2 else ["other"])
    document(kb, manager, title="Annual report", tags=["report"])
    client = client_for(manager)
    url = reverse("knowledge:knowledge_base", args=[kb.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert page.context["page"].paginator.count == 26
    assert len(page.context["page"]) == 20

    page = client.get(url, {"q": "annual"})
    assert [d.title for d in page.context["page"]] == ["Annual report"]

    page = client.get(url, {"tag": "memo", "order": "title", "per_page": 50})
    titles = [d.title for d in page.context["page"]]
    assert len(titles) == 12 and titles == sorted(titles)

    page = client.get(url, {"state": "published"})
    assert page.context["page"].paginator.count == 0

    page = client.get(url, {"page": 2})
    assert len(page.context["page"]) == 6

    # htmx asks only for the table
    partial = client.get(url, {"q": "memo"}, headers={"HX-Request": "true", "HX-Target": "document-table"})
    assert b"<html" not in partial.content and b'id="document-table"' in partial.content


def test_employee_sees_only_published_documents_in_the_list(client_for, people, kb, doc):
    document(kb, people["credit_manager"], title="Secret draft")
    page = client_for(people["credit_employee"]).get(reverse("knowledge:knowledge_base", args=[kb.pk]))
    titles = [d.title for d in page.context["page"]]
    assert titles == ["Loan policy"]


def test_document_page_renders_the_live_version_for_employees(client_for, people, doc):
    page = client_for(people["credit_employee"]).get(reverse("knowledge:document", args=[doc.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "3.5%" in html and "4.0%" not in html  # the draft v2 is not for readers
    assert "<h1>Loans</h1>" in html
    assert "Content-Security-Policy" in page.headers
    assert reverse("knowledge:document_edit", args=[doc.pk]) not in html


def test_document_page_shows_the_draft_to_its_editors(client_for, people, doc):
    page = client_for(people["credit_manager"]).get(reverse("knowledge:document", args=[doc.pk]))
    html = page.content.decode()
    assert "4.0%" in html and "Not published: draft v2" in html
    assert reverse("knowledge:document_edit", args=[doc.pk]) in html


def test_document_content_is_sanitized(client_for, people, kb):
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>[a](javascript:alert(3))"
    d = document(kb, people["credit_manager"], content=payload)
    html = client_for(people["credit_manager"]).get(reverse("knowledge:document", args=[d.pk])).content.decode()
    body = html.split('id="document-content">', 1)[1]
    assert "<script" not in body and "onerror" not in body and "javascript:" not in body


@pytest.mark.parametrize("name", ["document", "history", "diff", "version", "lock"])
def test_pages_render_for_reviewers_and_managers(client_for, people, doc, name):
    for who in ("credit_manager", "credit_reviewer", "reviewer"):
        response = client_for(people[who]).get(_urls(doc)[name])
        assert response.status_code == 200, (who, name)


def test_history_lists_versions_with_restore_and_compare(client_for, people, doc):
    html = client_for(people["credit_manager"]).get(reverse("knowledge:history", args=[doc.pk])).content.decode()
    assert 'data-version="2"' in html and 'data-version="1"' in html
    assert 'data-action="restore-1"' in html
    assert 'data-action="compare-side"' in html
    assert "rate up" in html


def test_diff_side_by_side_and_inline(client_for, people, doc):
    client = client_for(people["credit_reviewer"])
    url = reverse("knowledge:diff", args=[doc.pk])
    side = client.get(url, {"a": 1, "b": 2}).content.decode()
    assert '<table class="diff-side">' in side
    assert '<del class="diff-delete">3.5%</del>' in side  # the number stays whole
    inline = client.get(url, {"a": 1, "b": 2, "view": "inline"}).content.decode()
    assert '<pre class="diff-inline">' in inline and '<ins class="diff-insert">' in inline


def test_version_file_download_is_audited(client_for, people, doc):
    response = client_for(people["credit_employee"]).get(_urls(doc)["file"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == "# Loans\n\nRate is 3.5%.\n".encode()
    from core.models import AuditEntry

    assert AuditEntry.objects.filter(action="download", actor=people["credit_employee"]).exists()


def test_compliance_page_csv_and_print(client_for, people, doc):
    client = client_for(people["reviewer"])
    page = client.get(reverse("knowledge:compliance"))
    assert page.status_code == 200
    actions = {entry.action for entry in page.context["page"]}
    assert {"create", "submit", "approve", "publish", "edit"} <= actions

    page = client.get(reverse("knowledge:compliance"), {"action": "edit"})
    assert {entry.action for entry in page.context["page"]} == {"edit"}

    page = client.get(reverse("knowledge:compliance"), {"author": "credit_reviewer"})
    assert {entry.action for entry in page.context["page"]} == {"approve", "publish"}

    response = client.get(reverse("knowledge:compliance_csv"), {"action": "edit"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["audit_id", "timestamp", "action"]
    assert [r[2] for r in rows[1:]] == ["edit"]
    assert rows[1][12] == "Loan policy" and rows[1][15] == "rate up"
    # A readable summary beside the whole details, in the reader's language.
    assert rows[0][-2:] == ["summary", "details"]
    assert rows[1][-2] == "change note: rate up" and json.loads(rows[1][-1])["change_note"] == "rate up"
    zh = client.get(reverse("knowledge:compliance_csv"), {"action": "edit"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh_rows = list(csv.reader(io.StringIO(b"".join(zh.streaming_content).decode("utf-8-sig"))))
    assert zh_rows[1][-2] == "修改说明: rate up"

    printable = client.get(reverse("knowledge:compliance_print"), {"date_from": "2000-01-01"})
    assert printable.status_code == 200 and b"Loan policy" in printable.content


def test_csv_neutralizes_spreadsheet_formulas(client_for, people, kb):
    document(kb, people["credit_manager"], title="=HYPERLINK(\"http://evil\")")
    response = client_for(people["reviewer"]).get(reverse("knowledge:compliance_csv"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in text


def test_compliance_is_404_for_non_reviewers(client_for, people, doc):
    for who in ("credit_employee", "credit_manager", "hr_employee"):
        client = client_for(people[who])
        assert client.get(reverse("knowledge:compliance")).status_code == 404
        assert client.get(reverse("knowledge:compliance_csv")).status_code == 404


# --- hidden is missing ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["document", "history", "diff", "version", "file", "csv", "print", "edit", "lock"])
def test_employee_of_an_unshared_department_gets_404(client_for, people, doc, name):
    response = client_for(people["hr_employee"]).get(_urls(doc)[name])
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["document", "history", "diff", "version", "file"])
def test_hr_manager_gets_404_too(client_for, people, doc, name):
    assert client_for(people["hr_manager"]).get(_urls(doc)[name]).status_code == 404


def test_reviewer_of_another_department_gets_404_on_document_csv(client_for, people, doc, hr):
    from accounts.models import Role
    from tests.factories import member

    hr_reviewer = member(hr, Role.COMPLIANCE_REVIEWER, "hr_reviewer")
    client = client_for(hr_reviewer)
    assert client.get(_urls(doc)["csv"]).status_code == 404
    # and the unfiltered export holds none of its rows
    text = b"".join(client.get(reverse("knowledge:compliance_csv")).streaming_content).decode("utf-8-sig")
    assert "Loan policy" not in text


def test_employee_cannot_see_draft_versions_or_their_diff(client_for, people, doc):
    client = client_for(people["credit_employee"])
    assert client.get(reverse("knowledge:version", args=[doc.pk, 2])).status_code == 404
    assert client.get(reverse("knowledge:diff", args=[doc.pk]) + "?a=1&b=2").status_code == 404


def test_hidden_posts_are_404(client_for, people, doc):
    client = client_for(people["hr_manager"])
    for name in ("document_submit", "document_archive", "document_rollback", "edit_lock_break", "edit_lock_release"):
        assert client.post(reverse(f"knowledge:{name}", args=[doc.pk]), {"to_number": 1}).status_code == 404, name
    review = Review.objects.create(document=doc, version=doc.latest_version, requested_by=people["credit_manager"])
    assert client.get(reverse("knowledge:review", args=[review.pk])).status_code == 404
    assert client.post(reverse("knowledge:review_approve", args=[review.pk])).status_code == 404


# --- editing --------------------------------------------------------------------------------------


def test_manager_creates_a_document_with_an_uploaded_file(client_for, people, kb):
    client = client_for(people["credit_manager"])
    upload = SimpleUploadedFile("notes.txt", "第一条：贷款需审批。\n".encode(), content_type="text/plain")
    response = client.post(
        reverse("knowledge:document_create", args=[kb.pk]),
        {"title": "审批规定", "tags": "贷款，审批", "content": "", "file": upload},
    )
    assert response.status_code == 302
    d = Document.objects.get(title="审批规定")
    assert d.tags == ["贷款", "审批"]
    assert d.latest_version.content == "第一条：贷款需审批。\n"
    assert d.latest_version.file_name == "notes.txt"


def test_upload_of_other_formats_is_refused(client_for, people, kb):
    upload = SimpleUploadedFile("doc.pdf", b"%PDF-1.4", content_type="application/pdf")
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_create", args=[kb.pk]), {"title": "PDF", "file": upload}
    )
    assert response.status_code == 400
    assert not Document.objects.filter(title="PDF").exists()


def test_preview_renders_sanitized_markdown(client_for, people):
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:preview"), {"content": "**bold** <script>alert(1)</script>"}
    )
    assert b"<strong>bold</strong>" in response.content and b"<script" not in response.content


def test_editor_takes_the_lock_and_save_draft_then_submit(client_for, people, doc):
    manager = people["credit_manager"]
    client = client_for(manager)
    page = client.get(reverse("knowledge:document_edit", args=[doc.pk]))
    assert page.status_code == 200
    assert b'name="base_version"' in page.content and b'value="2"' in page.content
    assert EditLock.objects.get(document=doc).owner == manager

    response = client.post(
        reverse("knowledge:document_edit", args=[doc.pk]),
        {"base_version": 2, "content": "# Loans\n\nRate is 4.5%.\n", "change_note": "rate 4.5", "action": "submit"},
    )
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.latest_version.number == 3 and doc.state == DocumentState.IN_REVIEW
    assert not EditLock.objects.filter(document=doc).exists()  # released after saving


def test_published_document_needs_a_change_note(client_for, people, doc):
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_edit", args=[doc.pk]), {"base_version": 2, "content": "changed", "action": "save"}
    )
    assert response.status_code == 400
    assert b"change note is required" in response.content
    assert DocumentVersion.objects.filter(document=doc).count() == 2


def test_conflict_page_keeps_both_texts(client_for, people, doc, credit):
    from accounts.models import Role
    from tests.factories import member

    other = member(credit, Role.KNOWLEDGE_MANAGER, "other_manager")
    services.document_version_create(
        actor=other, document=doc, content="# Loans\n\nTheir text: rate is 5%.\n", base_version_number=2,
        change_note="theirs",
    )
    mine = "# Loans\n\nMy text: rate is 4.2% <b>bold</b>.\n"
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_edit", args=[doc.pk]),
        {"base_version": 2, "content": mine, "change_note": "mine", "action": "save"},
    )
    assert response.status_code == 409
    html = response.content.decode()
    # my text is in the merge textarea (escaped), theirs shown beside it, and the form now targets v3
    assert "My text: rate is 4.2% &lt;b&gt;bold&lt;/b&gt;." in html
    assert "Their text: rate is 5%." in html
    assert '<input type="hidden" name="base_version" value="3">' in html
    assert '<table class="diff-side">' in html
    assert "<b>bold</b>" not in html
    assert DocumentVersion.objects.filter(document=doc).count() == 3  # nothing overwritten, mine not saved

    # resubmitting the merged text against the latest number works
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_edit", args=[doc.pk]),
        {"base_version": 3, "content": mine, "change_note": "merged", "action": "save"},
    )
    assert response.status_code == 302
    assert Document.objects.get(pk=doc.pk).latest_version.content == mine


def test_lock_is_shown_to_other_editors_and_admins_may_break_it(client_for, people, doc):
    services.edit_lock_acquire(actor=people["credit_manager"], document=doc)
    html = client_for(people["credit_reviewer"]).get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert "credit_manager is editing this document" in html
    assert 'data-action="break-lock"' not in html

    admin = client_for(people["credit_admin"])
    html = admin.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert 'data-action="break-lock"' in html
    assert admin.post(reverse("knowledge:edit_lock_break", args=[doc.pk])).status_code == 302
    assert not EditLock.objects.filter(document=doc).exists()


def test_rollback_button_creates_a_new_version_in_review(client_for, people, doc):
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_rollback", args=[doc.pk]), {"to_number": 1}
    )
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.latest_version.number == 3
    assert doc.latest_version.change_note == "rolled back to v1"
    assert doc.latest_version.content == "# Loans\n\nRate is 3.5%.\n"


# --- reviews --------------------------------------------------------------------------------------


def test_review_inbox_and_approve(client_for, people, doc):
    review = services.document_submit(actor=people["credit_manager"], document=doc)
    client = client_for(people["reviewer"])
    inbox = client.get(reverse("knowledge:review_inbox"))
    assert inbox.status_code == 200 and f'data-review="{review.pk}"'.encode() in inbox.content
    page = client.get(reverse("knowledge:review", args=[review.pk]))
    assert page.status_code == 200 and b'data-action="approve"' in page.content
    response = client.post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "ok"})
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.live_version.number == 2 and doc.state == DocumentState.PUBLISHED


def test_request_changes_needs_a_comment(client_for, people, doc):
    review = services.document_submit(actor=people["credit_manager"], document=doc)
    client = client_for(people["credit_reviewer"])
    response = client.post(reverse("knowledge:review_request_changes", args=[review.pk]), {"comment": ""})
    assert response.status_code == 400
    response = client.post(reverse("knowledge:review_request_changes", args=[review.pk]), {"comment": "fix the rate"})
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.state == ReviewState.CHANGES_REQUESTED


def test_manager_cannot_approve(client_for, people, doc):
    review = services.document_submit(actor=people["credit_manager"], document=doc)
    response = client_for(people["credit_manager"]).post(reverse("knowledge:review_approve", args=[review.pk]))
    assert response.status_code == 403
    assert b'data-action="approve"' not in client_for(people["credit_manager"]).get(
        reverse("knowledge:review", args=[review.pk])
    ).content


def test_review_inbox_is_for_reviewers(client_for, people):
    assert client_for(people["credit_employee"]).get(reverse("knowledge:review_inbox")).status_code == 403


def test_reader_diff_defaults_to_the_versions_they_may_see(client_for, people, doc):
    response = client_for(people["credit_employee"]).get(reverse("knowledge:diff", args=[doc.pk]))
    assert response.status_code == 200
    assert response.context["a"].number == response.context["b"].number == 1



def test_superuser_sees_the_compliance_page(client_for, people, doc):
    page = client_for(people["superuser"]).get(reverse("knowledge:compliance"))
    assert page.status_code == 200 and page.context["page"].paginator.count > 0
    assert client_for(people["superuser"]).get(reverse("knowledge:compliance_csv")).status_code == 200
