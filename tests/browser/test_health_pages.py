"""Knowledge health pages in a real Chromium, in English and Chinese: no JavaScript error, the
trend chart drawn, nothing left untranslated, the other department's text never shown."""

import datetime as dt
import os

import pytest
from django.utils import timezone

from health.services import stale_scan
from tests.browser.conftest import login
from tests.factories import KnowledgeBaseFactory
from tests.health.helpers import live_document, new_version, run_health_jobs

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/health/", "/health/conflicts/", "/health/carried-over/", "/health/stale/", "/health/notifications/"]
ENGLISH_LABELS = ["Knowledge health", "Overview", "Conflicting facts", "Changes not carried over", "Needs review",
                  "Open conflicts", "Run a full scan", "Not a conflict", "Mark reviewed", "What to notify me of"]


@pytest.fixture
def findings(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, review_required=False)
    hr_kb = KnowledgeBaseFactory(department=hr, review_required=False)
    credit_doc = live_document(credit_kb, people["credit_manager"], "个人贷款利率为4.35%。", title="Credit policy")
    live_document(hr_kb, people["hr_manager"], "HR secret memo. The personal loan interest rate is 3.85%.", title="HR memo")
    live_document(credit_kb, people["credit_manager"], "Q: What is the annual leave?\nA: 10 days.", title="FAQ")
    rule = live_document(credit_kb, people["credit_manager"], "年假为10天。", title="Leave rule")
    run_health_jobs()
    new_version(rule, people["credit_manager"], "年假为15天。")
    run_health_jobs()
    credit_doc.review_by = timezone.localdate() - dt.timedelta(days=3)
    credit_doc.save()
    stale_scan()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_health_pages_render_in_both_languages(page, people, findings, language):
    login(page, people["credit_manager"])
    page.goto("/health/")
    with page.expect_navigation():
        page.select_option("#language-select", language)
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == {"en": "Knowledge health", "zh-hans": "知识健康"}[language]
    for url in PAGES:
        response = page.goto(url)
        assert response.status == 200, url
        body = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
        assert "HR secret memo" not in page.content()
        if language == "zh-hans":
            left = [label for label in ENGLISH_LABELS if label in body]
            assert not left, f"{url}: untranslated {left}"
        page.screenshot(path=os.path.join(os.environ.get("HEALTH_SCREENSHOTS", "/tmp"), f"health-{language}-{url.strip('/').replace('/', '-')}.png"), full_page=True)
    page.goto("/health/")
    page.wait_for_function("() => typeof Chart !== 'undefined' && !!Chart.getChart(document.getElementById('health-trend'))")
    assert page.locator('[data-figure="open_conflicts"] b').inner_text() == "1"
    assert page.locator("[data-bell] [data-unread]").inner_text() != ""
    page.goto("/health/conflicts/")
    assert page.locator("[data-side=hidden]").count() == 1 and page.locator("[data-side=readable] mark").count() == 1
