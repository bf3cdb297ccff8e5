"""In Chromium, both languages: create and revoke an API key on the profile page; the usage page
draws its chart under the strict CSP without a script error."""

import pytest

from accounts.limits import usage_record
from tests.browser.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("language,revoke_label", [("en", "Revoke"), ("zh-hans", "撤销")])
def test_create_and_revoke_an_api_key(page, people, language, revoke_label):
    login(page, people["credit_employee"])
    page.goto("/accounts/profile/")
    page.select_option("#language-select", language)
    page.wait_for_load_state("load")
    page.fill("#id_name", "notebook")
    with page.expect_navigation():
        page.click("#api-keys button[type=submit]:not(.link)")
    key = page.text_content('[data-testid="api-key"]')
    assert key.startswith("dsk-")
    page.goto("/accounts/profile/")
    assert key not in page.content() and key[:12] in page.content()
    with page.expect_navigation():
        page.click(f'[data-testid="api-key-list"] button:has-text("{revoke_label}")')
    assert page.locator('[data-testid="api-key-list"] button.danger').count() == 0


@pytest.mark.parametrize("language,title", [("en", "Usage and limits"), ("zh-hans", "用量与限额")])
def test_usage_chart_renders(page, people, language, title):
    usage_record(user=people["credit_employee"], prompt_tokens=120, completion_tokens=30)
    usage_record(user=people["hr_employee"], prompt_tokens=60, completion_tokens=10)
    login(page, people["superuser"])
    page.goto("/people/")
    page.select_option("#language-select", language)
    page.wait_for_load_state("load")
    with page.expect_navigation():
        page.click('[data-testid="usage-link"]')
    assert page.text_content("h1") == title
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('usage-chart'))")
    datasets = page.evaluate("() => Chart.getChart(document.getElementById('usage-chart')).data.datasets.map(d => d.label)")
    assert len(datasets) == 2
