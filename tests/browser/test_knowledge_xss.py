"""Script in a document never runs: not on the document page, a version page, a diff or the preview."""

import pytest
from playwright.sync_api import expect

from knowledge import services
from tests.browser.conftest import login
from tests.factories import KnowledgeBaseFactory, published_document

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = "\n\n".join(
    [
        "# Harmless title",
        "<script>window.__xss = 'script'</script>",
        "<img src=x onerror=\"window.__xss = 'img'; alert('img')\">",
        "[click me](javascript:window.__xss='link';alert('link'))",
        "<a href=\"javascript:window.__xss='a'\" id=\"raw-link\">raw link</a>",
        "<svg onload=\"window.__xss='svg'\"></svg>",
        "<iframe src=\"javascript:window.__xss='iframe'\"></iframe>",
        "<details open ontoggle=\"window.__xss='details'\">x</details>",
        "![pic](javascript:window.__xss='image')",
        "```\n</code></pre><script>window.__xss='fence'</script>\n```",
    ]
)


@pytest.fixture
def console_errors_allowed():
    # the sanitized <img src="x"> still asks the server for "x", which answers 404
    return [r"Failed to load resource: the server responded with a status of 404"]


def _assert_no_script_ran(page):
    page.wait_for_timeout(300)  # give an onerror/onload handler time to fire
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not [e for e in page.errors if e.startswith("dialog")]


def test_xss_payloads_do_not_run(page, people, credit):
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(name="XSS", department=credit)
    doc = published_document(kb, manager, people["credit_reviewer"], content="# Safe\n\nplain text", title="Payloads")
    services.document_version_create(
        actor=manager,
        document=doc,
        content=PAYLOAD,
        base_version_number=1,
        change_note="<script>window.__xss=1</script>",
    )
    login(page, manager)

    page.goto(f"/knowledge/documents/{doc.pk}/")
    expect(page.locator("#document-content h1")).to_have_text("Harmless title")
    assert page.locator("#document-content script").count() == 0
    page.click("text=click me")  # a link whose javascript: URL was removed
    page.click("#document-content >> text=raw link")
    _assert_no_script_ran(page)

    page.goto(f"/knowledge/documents/{doc.pk}/versions/2/")
    _assert_no_script_ran(page)

    for view in ("side", "inline"):
        page.goto(f"/knowledge/documents/{doc.pk}/diff/?a=1&b=2&view={view}")
        assert page.locator("#diff-body").inner_text().count("window.__xss") >= 5  # shown as text
        _assert_no_script_ran(page)

    page.goto(f"/knowledge/documents/{doc.pk}/history/")
    _assert_no_script_ran(page)

    # the editor's live preview renders the same payloads through htmx
    page.goto(f"/knowledge/documents/{doc.pk}/edit/")
    page.locator("#preview h1").wait_for()
    page.fill("#id_content", PAYLOAD + "\n\n## typed")
    page.locator("#preview h2").wait_for()
    assert page.locator("#preview script").count() == 0
    _assert_no_script_ran(page)
