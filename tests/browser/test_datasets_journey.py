import json

import pytest

from tests.browser.conftest import login
from tests.training.conftest import ml, tokenizer_dir, tokenizer_setting  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def console_errors_allowed():
    return [r"status of 400 \(Bad Request\)"]  # the page listing the upload's errors answers 400

BAD = b'{"instruction": "ok", "output": "fine"}\n{"instruction": "", "output": 3}\n'
GOOD = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
    {"instruction": "如何申请年假？", "output": "在人事系统中提交申请。"},
    {"instruction": "如何申请年假？", "output": "在人事系统中提交申请。"},
    {"instruction": "联系谁？", "output": "拨打13812345678"},
    {"instruction": "How do I claim expenses?", "output": "Submit the invoice."},
]).encode()


def test_upload_clean_and_preview_in_both_languages(page, ml, credit, tokenizer_setting):  # noqa: F811
    login(page, ml["credit_admin"])
    page.goto("/training/")
    page.click("#datasets-tile")
    page.fill("#id_name", "Leave FAQ")
    page.select_option("#id_department", str(credit.pk))
    page.set_input_files("#id_file", files=[{"name": "bad.jsonl", "mimeType": "application/json", "buffer": BAD}])
    page.click("#dataset-upload-form button[type=submit]")
    errors = page.locator("[data-upload-errors] tbody tr")
    assert errors.count() == 2
    assert errors.nth(1).inner_text().split("\t") == ["2", "output", "must be text, got int"]

    page.fill("#id_name", "Leave FAQ")
    page.select_option("#id_department", str(credit.pk))
    page.set_input_files("#id_file", files=[{"name": "good.jsonl", "mimeType": "application/json", "buffer": GOOD}])
    # The version page loads the tokenizer (transformers) on first use: slow on a busy 2-core machine.
    with page.expect_navigation(timeout=60_000):
        page.click("#dataset-upload-form button[type=submit]", timeout=60_000)
    assert page.url.endswith("/v1/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('token-length-histogram'))")
    assert page.locator(".row-preview").count() == 4
    assert page.locator(".row-preview").first.locator(".tok.loss").count() > 0

    page.check("#id_mask_pii")
    with page.expect_navigation(timeout=30_000):
        page.click("#clean-form button[type=submit]", timeout=30_000)
    assert page.url.endswith("/v2/")
    report = page.locator("#cleaning-report").inner_text()
    assert "Exact duplicates" in report and "duplicate of #0" in report and "mobile number × 1" in report
    assert "13812345678" not in page.content()

    page.select_option("#language-select", "zh-hans")
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('token-length-histogram'))")
    assert "清洗报告" in page.locator("#cleaning-report").inner_text()
    assert "手机号 × 1" in page.locator("#cleaning-report").inner_text()
