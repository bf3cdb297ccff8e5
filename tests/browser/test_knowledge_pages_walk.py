"""Issue 12 in Chromium: the main pages in both languages at 1280 px and 390 px (no JavaScript or
console error, no horizontal overflow, no untranslated interface word in Chinese), and the journey
upload → edit → archive → restore in both languages. BROWSER_SCREENSHOTS_DIR keeps screenshots."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from core.audit import AuditAction
from core.models import AuditEntry
from knowledge import services
from knowledge.models import Chunk, Document, DocumentState
from tests.browser.conftest import login, screenshot
from tests.factories import KnowledgeBaseFactory, published_document

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
# Interface words that are the same in both languages (names, formats, units).
SAME_IN_BOTH = {
    "CSV", "JSON", "BM25", "API", "IP", "MRR", "DeepSeek", "SHA", "Markdown", "RRF", "PDF", "HTML", "URL", "MB",
    "root", "credit", "manager", "reviewer", "UTC", "txt", "csv", "jsonl", "LoRA", "DPO", "alpha", "dropout", "HTTP", "SQL",
    "DSN",
}
CHROME = "h1, h2, h3, th, button, label, .mainnav a, .tabs a, .actions a, .pagination, legend"


@pytest.fixture
def console_errors_allowed():
    return [r"status of 400 \(Bad Request\)"]  # a refused form answers 400


def _problems(page, name: str, language: str) -> list[str]:
    screenshot(page, name)
    found = []
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        found.append(f"{name}: the page is {overflow}px wider than the window")
    squeezed = page.eval_on_selector_all(
        CHROME + ", td, .topbar a",
        """els => els.filter(e => {
            const r = e.getBoundingClientRect(), size = parseFloat(getComputedStyle(e).fontSize);
            return e.innerText.trim().length >= 2 && r.width > 0 && r.width < 1.6 * size && r.height > 2.5 * size;
        }).map(e => e.innerText.trim().slice(0, 20))""",
    )
    if squeezed:
        found.append(f"{name}: one character per line: {squeezed}")
    if language == "zh-hans":
        texts = page.eval_on_selector_all(CHROME, "els => els.map(e => e.innerText)")
        english = {w for t in texts for w in re.findall(r"[A-Za-z]{3,}", t)} - SAME_IN_BOTH
        if english:
            found.append(f"{name}: untranslated words in Chinese: {sorted(english)}")
    return found


def _switch_language(page, language: str) -> None:
    if page.input_value("#language-select") != language:
        with page.expect_navigation():
            page.select_option("#language-select", language)


@pytest.fixture
def site(people, credit):
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    kb = KnowledgeBaseFactory(department=credit, name="信贷制度", description="贷款审批与利率")
    doc = published_document(kb, manager, reviewer, title="贷款管理办法", content="# 第一章 总则\n\n年利率为4.35%。\n")
    services.document_version_create(
        actor=manager, document=doc, content="# 第一章 总则\n\n年利率为3.85%。\n", base_version_number=1, change_note="下调利率"
    )
    services.document_submit(actor=manager, document=doc)
    old = published_document(kb, manager, reviewer, title="旧版规定", content="废止的规定\n")
    services.document_archive(actor=manager, document=old, reason="已被新规定取代")
    for index in range(3):
        Chunk.objects.create(version=doc.live_version, document=doc, knowledge_base=kb, index=index,
                             text=f"第{index}段", token_count=3)
    return {"kb": kb, "doc": doc, "old": old}


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_main_pages_read_well_in_both_languages_and_widths(page, people, site, language, width):
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width])))
    kb, doc, old = site["kb"], site["doc"], site["old"]
    review = doc.reviews.get(state="open")
    login(page, people["superuser"])
    page.goto("/")
    _switch_language(page, language)
    pages = {
        "home": "/",
        "knowledge": reverse("knowledge:index"),
        "knowledge-base": reverse("knowledge:knowledge_base", args=[kb.pk]),
        "document": reverse("knowledge:document", args=[doc.pk]),
        "history": reverse("knowledge:history", args=[doc.pk]),
        "diff": reverse("knowledge:diff", args=[doc.pk]) + "?a=1&b=2",
        "archived": reverse("knowledge:document", args=[old.pk]),
        "review-inbox": reverse("knowledge:review_inbox"),
        "review": reverse("knowledge:review", args=[review.pk]),
        "compliance": reverse("knowledge:compliance"),
        "compliance-print": reverse("knowledge:compliance_print"),
        "hit-testing": reverse("retrieval:hit_test") + f"?knowledge_base={kb.pk}",
        "chunks": reverse("ingest:chunks", args=[doc.live_version.pk]),
        "upload": reverse("ingest:upload", args=[kb.pk]),
        "new-document": reverse("knowledge:document_create", args=[kb.pk]),
        "archive-confirm": reverse("knowledge:document_archive", args=[doc.pk]),
        "editor": reverse("knowledge:document_edit", args=[doc.pk]),
    }
    problems = []
    for name, url in pages.items():
        response = page.goto(url, timeout=90_000)  # the first diff loads jieba's dictionary
        assert response.status == 200, f"{name}: {response.status}"
        page.wait_for_load_state("load")
        problems += _problems(page, f"{language}-{width}-{name}", language)
    assert not problems, problems
    assert not page.errors


@pytest.mark.parametrize("language,texts", [
    ("en", {"archived": "The document was archived.", "restored": "restored and is published again",
            "reason": "Say why this published document is archived."}),
    ("zh-hans", {"archived": "文档已归档", "restored": "文档已恢复并重新发布",
                 "reason": "请说明归档这份已发布文档的原因。"}),
])
def test_upload_edit_archive_restore(page, people, credit, language, texts, tmp_path):
    kb = KnowledgeBaseFactory(department=credit, name="Handbook", review_required=False)
    login(page, people["credit_manager"])
    page.goto(reverse("knowledge:knowledge_base", args=[kb.pk]))
    _switch_language(page, language)

    # upload
    source = tmp_path / "leave.md"
    source.write_text("# 请假制度\n\n年假五天。\n", encoding="utf-8")
    with page.expect_navigation():
        page.click('[data-link="upload"]')
    page.set_input_files("#upload-form input[type=file]", str(source))
    with page.expect_navigation():
        page.click("#upload-form button[type=submit]")
    link = page.locator('[data-outcome="created"] a').first
    with page.expect_navigation():
        link.click()
    doc = Document.objects.get(knowledge_base=kb)

    # edit and publish
    with page.expect_navigation():
        page.click('[data-link="edit"]')
    expect(page.locator("#edit-lock")).to_have_attribute("hx-post", reverse("knowledge:edit_lock_heartbeat", args=[doc.pk]))
    page.fill("#id_content", "# 请假制度\n\n年假十天。\n")
    with page.expect_navigation():
        page.click('[data-action="save-submit"]')
    expect(page.locator("#document-content")).to_contain_text("年假十天")
    doc.refresh_from_db()
    assert doc.state == DocumentState.PUBLISHED

    # archive: a confirmation page, and a reason for a published document
    with page.expect_navigation():
        page.click('[data-action="archive"]')
    with page.expect_navigation():
        page.click('[data-action="confirm-archive"]')
    expect(page.locator("#archive-form")).to_contain_text(texts["reason"])
    assert Document.objects.get(pk=doc.pk).state == DocumentState.PUBLISHED
    page.fill("#id_reason", "过时")
    with page.expect_navigation():
        page.click('[data-action="confirm-archive"]')
    expect(page.locator(".messages")).to_contain_text(texts["archived"])
    assert Document.objects.get(pk=doc.pk).state == DocumentState.ARCHIVED

    # restore: published again at once (this knowledge base needs no review)
    with page.expect_navigation():
        page.click('[data-action="restore"]')
    expect(page.locator(".messages")).to_contain_text(texts["restored"])
    assert Document.objects.get(pk=doc.pk).state == DocumentState.PUBLISHED
    actions = list(AuditEntry.objects.filter(object_id=str(doc.pk)).values_list("action", flat=True))
    assert AuditAction.ARCHIVE in actions and AuditAction.RESTORE in actions


def _unanswered_question(user) -> None:
    """A question the knowledge did not answer, grouped, so that the gaps page lists a group."""
    from chat.models import Conversation, Message, MessageStatus, Role
    from health.services import gap_scan

    conversation = Conversation.objects.create(user=user, title="差旅")
    Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.NO_KNOWLEDGE,
                           question="差旅住宿的报销上限是多少？")
    gap_scan()
    # What a manager is told of a group (health.services._gap_notify), so that the bell's page shows one.
    from health.models import Notification, NotificationKind

    Notification.objects.create(user=user, kind=NotificationKind.GAP, event="gap:walk", period="p0",
                                message="3 unanswered questions like “差旅住宿的报销上限是多少？”",
                                subject="差旅住宿的报销上限是多少？", url="/health/gaps/")


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_other_apps_pages_read_well_in_both_languages_and_widths(page, people, site, language, width):
    """Chat, training, health, sources, people and the system page: the same checks as the knowledge pages."""
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width])))
    _unanswered_question(people["superuser"])
    # A published document not retrieved for long, so that the "not retrieved" page lists one.
    Document.objects.filter(pk=site["doc"].pk).update(created_at=timezone.now() - dt.timedelta(days=120))
    login(page, people["superuser"])
    page.goto("/")
    _switch_language(page, language)
    pages = {
        "chat": reverse("chat:index"),
        "assistants": reverse("chat:assistants"),
        "endpoints": reverse("chat:endpoints"),
        "training": reverse("training:index"),
        "datasets": reverse("training:datasets:list"),
        "distill": reverse("training:datasets:distill"),
        "jobs": reverse("training:job_list"),
        "models": reverse("training:model_list"),
        "health": reverse("health:index"),
        "conflicts": reverse("health:conflicts"),
        "carried-over": reverse("health:carry_overs"),
        "stale": reverse("health:stale"),
        "notifications": reverse("health:notifications"),
        "gaps": reverse("health:gaps"),
        "not-retrieved": reverse("health:unretrieved"),
        "health-settings": reverse("health:knowledge_base_settings", args=[site["kb"].pk]),
        "sources": reverse("sources:list", args=[site["kb"].pk]),
        "allowed-hosts": reverse("sources:allowed_hosts"),
        "people": reverse("people:index"),
        "usage": reverse("people:usage"),
        "profile": reverse("accounts:profile"),
        "system": reverse("core:system"),
    }
    problems = []
    for name, url in pages.items():
        response = page.goto(url, timeout=90_000)
        assert response.status == 200, f"{name}: {response.status}"
        page.wait_for_load_state("load")
        problems += _problems(page, f"{language}-{width}-{name}", language)
    assert not problems, problems
    assert not page.errors


@pytest.mark.parametrize("language, message", [
    ("en", "A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “kill”."),
    ("zh-hans", "数据源查询必须是 SELECT（或 WITH、VALUES、TABLE）语句；此查询以“kill”开头。"),
])
def test_a_refused_source_query_shows_under_its_field_in_both_languages(page, people, site, language, message):
    from sources.models import AllowedHost, Source, SourceKind

    AllowedHost.objects.create(source_kind=SourceKind.SQL, host="db.internal.example", port=5432)
    login(page, people["credit_manager"])
    page.goto("/")
    _switch_language(page, language)
    page.goto(reverse("sources:create", args=[site["kb"].pk, "sql"]))
    page.fill("#id_name", "Warehouse")
    page.fill("#id_dsn", "postgresql://reader:pw@db.internal.example:5432/warehouse")
    page.fill("#id_query", "/* SELECT */ KILL 1")
    page.fill("#id_key_field", "id")
    page.fill("#id_title_template", "{title}")
    page.fill("#id_body_template", "{body}")
    with page.expect_navigation():
        page.click("form button[type=submit].primary")
    expect(page.locator("#id_query").locator("xpath=ancestor::*[contains(@class, 'field')][1]")).to_contain_text(message)
    assert page.input_value("#id_query") == "/* SELECT */ KILL 1"  # what was typed is kept
    assert not _problems(page, f"{language}-source-query-refused", language)
    assert not Source.objects.exists()
