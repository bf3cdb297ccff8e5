"""The two journeys of issue 3 in real Chromium."""

import re

import pytest
from playwright.sync_api import expect

from knowledge import services
from knowledge.models import Document, DocumentState
from tests.browser.conftest import login
from tests.factories import KnowledgeBaseFactory, published_document

pytestmark = pytest.mark.django_db(transaction=True)


def test_knowledge_manager_creates_edits_and_submits(page, people, credit):
    login(page, people["credit_manager"])
    page.click('[data-nav="knowledge"]')

    # a knowledge base
    page.fill("#id_name", "Loan handbook")
    page.select_option("#id_department", label="Credit")
    page.click("text=Create knowledge base")
    expect(page.locator("h1")).to_have_text("Loan handbook")

    # a document, with live preview while typing
    with page.expect_navigation():  # htmx binds on load; typing earlier is lost
        page.click('[data-link="new-document"]')
    page.fill("#id_title", "Mortgage rules")
    page.fill("#id_tags", "mortgage, 房贷")
    page.fill("#id_content", "# Mortgages\n\n| term | rate |\n|---|---|\n| 10y | 3.5% |\n")
    page.locator("#preview table").wait_for()
    page.click('[data-action="create"]')
    expect(page.locator("#document-title")).to_have_text("Mortgage rules")
    expect(page.locator("#document-state")).to_have_text("Draft")

    # edit: the editor holds the lock and sends the version it started from
    with page.expect_navigation():  # htmx binds on load; typing earlier is lost
        page.click('[data-link="edit"]')
    expect(page.locator('input[name="base_version"]')).to_have_value("1")
    expect(page.locator("#edit-lock")).to_contain_text("You are editing this document")
    page.fill("#id_content", "# Mortgages\n\n| term | rate |\n|---|---|\n| 10y | 3.8% |\n| 20y | 4.1% |\n")
    page.locator("#preview >> text=4.1%").wait_for()
    page.fill("#id_change_note", "new rates")
    page.click('[data-action="save-draft"]')
    expect(page.locator(".messages")).to_contain_text("Version 2 was saved as a draft")
    expect(page.locator("#document-content")).to_contain_text("3.8%")

    # submit for review
    page.click('[data-action="submit"]')
    expect(page.locator(".messages")).to_contain_text("sent for review")
    expect(page.locator("#document-state")).to_have_text("In review")
    # the document list filters as one types (htmx swaps the table)
    with page.expect_navigation():  # htmx binds on load; typing earlier is lost
        page.click("text=Loan handbook")
    expect(page.locator("#documents tbody tr")).to_have_count(1)
    page.fill("#id_q", "no such title")
    expect(page.locator("#documents")).to_contain_text("No documents match.")
    page.fill("#id_q", "mortgage")
    expect(page.locator("#documents")).to_contain_text("Mortgage rules")
    expect(page).to_have_url(re.compile(r"q=mortgage"))

    doc = Document.objects.get(title="Mortgage rules")
    assert doc.state == DocumentState.IN_REVIEW and doc.latest_version.number == 2
    assert doc.tags == ["mortgage", "房贷"]


def test_compliance_reviewer_reads_history_compares_and_approves(page, people, credit):
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(name="Credit rules", department=credit)
    doc = published_document(
        kb, manager, people["credit_reviewer"], content="贷款利率为百分之三。\n\nThe rate is three percent.\n",
        title="Rates",
    )
    services.document_version_create(
        actor=manager, document=doc, content="贷款利率为百分之四。\n\nThe rate is four percent.\n",
        base_version_number=1, change_note="rate change",
    )
    services.document_submit(actor=manager, document=doc)

    login(page, people["reviewer"])
    page.click('[data-nav="knowledge"]')
    page.click("text=Credit rules")
    page.click("text=Rates")
    page.click('[data-link="history"]')
    expect(page.locator('[data-version="2"]')).to_be_visible()
    expect(page.locator('[data-version="1"]')).to_be_visible()
    expect(page.locator("#versions")).to_contain_text("rate change")

    # compare v1 with v2, side by side, word by word
    page.check("#a-1")
    page.check("#b-2")
    page.click('[data-action="compare-side"]')
    expect(page.locator(".diff-side tr.diff-row-replace")).to_have_count(2)
    deleted = page.locator("#diff-body del").all_inner_texts()
    inserted = page.locator("#diff-body ins").all_inner_texts()
    assert "three" in deleted and "four" in inserted
    assert any("三" in text for text in deleted) and any("四" in text for text in inserted)

    # switch to the inline view (htmx swaps the diff only)
    page.select_option("#diff-view", "inline")
    page.locator('#diff-body[data-view="inline"] pre.diff-inline').wait_for()
    expect(page).to_have_url(re.compile(r"view=inline"))

    # approve from the review page
    page.click('#review-banner [data-link="review"]')
    page.fill("#id_comment", "符合规定 / compliant")
    page.click('[data-action="approve"]')
    expect(page.locator(".messages")).to_contain_text("v2 is live")
    expect(page.locator("#reviews")).not_to_contain_text("Rates")

    doc.refresh_from_db()
    assert doc.state == DocumentState.PUBLISHED and doc.live_version.number == 2
    page.goto(f"/knowledge/documents/{doc.pk}/")
    expect(page.locator("#document-content")).to_contain_text("four percent")
