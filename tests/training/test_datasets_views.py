import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import login
from training.models import Dataset, DatasetRow
from training.services_datasets import dataset_create, dataset_version_create

GOOD = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
    {"instruction": "如何申请年假？", "output": "在人事系统中提交申请。"},
    {"instruction": "如何申请年假？", "output": "在人事系统中提交申请。"},
    {"instruction": "联系谁？", "output": "拨打13812345678"},
]).encode()
BAD = b'{"instruction": "ok", "output": "fine"}\n{"instruction": ""}\nnot json\n'


def upload(client, content, name="d.jsonl", department=None, **extra):
    return client.post(reverse("training:datasets:create"), {
        "name": "Leave FAQ", "department": department, "format": "auto",
        "file": SimpleUploadedFile(name, content), **extra})


def test_upload_with_errors_lists_each_row_and_imports_nothing(ml, credit):
    client = login(ml["credit_admin"])
    response = upload(client, BAD, department=credit.pk)
    assert response.status_code == 400
    html = response.content.decode()
    assert "The file has 3 errors; nothing was imported." in html
    assert "<td>2</td><td><code>instruction</code></td><td>missing or empty</td>" in html
    assert "<td>2</td><td><code>output</code></td><td>missing or empty</td>" in html
    assert "<td>3</td><td><code>-</code></td><td>invalid JSON" in html
    assert Dataset.objects.count() == 0 and DatasetRow.objects.count() == 0


def test_upload_in_chinese_shows_translated_errors(ml, credit):
    client = login(ml["credit_admin"])
    client.cookies.load({"django_language": "zh-hans"})
    response = upload(client, BAD, department=credit.pk, HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    assert "文件有 3 处错误，未导入任何内容。" in html and "缺失或为空" in html


def test_upload_clean_preview_export(ml, credit, tokenizer_setting):
    client = login(ml["credit_admin"])
    response = upload(client, GOOD, department=credit.pk)
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:datasets:version", args=[dataset.pk, 1])
    page = client.get(response["Location"] + "?max_length=16&seed=3&validation_ratio=0.34")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="tok loss' in html and "token-length-data" in html and "Split with seed 3: 2 rows for training, 1 for validation." in html
    assert "Longer than the maximum length: truncated in training." in html
    response = client.post(reverse("training:datasets:clean", args=[dataset.pk, 1]), {
        "exact_duplicates": "on", "near_duplicates": "on", "near_threshold": "0.8", "min_answer_tokens": "0",
        "max_tokens": "0", "mask_pii": "on"})
    assert response["Location"] == reverse("training:datasets:version", args=[dataset.pk, 2])
    html = client.get(response["Location"]).content.decode()
    assert "Exact duplicates" in html and "duplicate of #0" in html and "mobile number × 1" in html
    assert "13812345678" not in html
    export = client.get(reverse("training:datasets:export", args=[dataset.pk, 2]))
    lines = export.content.decode().splitlines()
    assert [json.loads(line)["messages"][-1]["content"] for line in lines] == ["在人事系统中提交申请。", "拨打[手机号]"]


def test_preview_without_tokenizer_says_so(ml, credit, settings, tmp_path):
    settings.TRAINING_TOKENIZER_PATH = str(tmp_path)
    client = login(ml["credit_admin"])
    upload(client, GOOD, department=credit.pk)
    dataset = Dataset.objects.get()
    html = client.get(reverse("training:datasets:version", args=[dataset.pk, 1])).content.decode()
    assert "tokenizer_config.json is missing" in html and "如何申请年假？" in html


def test_other_departments_datasets_are_not_found(ml, credit, hr):
    dataset = dataset_create(actor=ml["hr_admin"], department=hr, name="HR only")
    dataset_version_create(actor=ml["hr_admin"], dataset=dataset, origin="upload", payloads=[
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}])
    client = login(ml["credit_admin"])
    for url in (reverse("training:datasets:detail", args=[dataset.pk]),
                reverse("training:datasets:version", args=[dataset.pk, 1]),
                reverse("training:datasets:export", args=[dataset.pk, 1])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("training:datasets:clean", args=[dataset.pk, 1]), {}).status_code == 404
    assert "HR only" not in client.get(reverse("training:datasets:list")).content.decode()
    # Uploading into a department one does not administer is refused by the form.
    assert upload(client, GOOD, department=hr.pk).status_code == 400 and Dataset.objects.count() == 1
    assert login(ml["credit_employee"]).get(reverse("training:datasets:list")).status_code == 403
    assert login(ml["ml_engineer"]).get(reverse("training:datasets:detail", args=[dataset.pk])).status_code == 200


def test_api_upload_errors_and_versions(ml, credit, hr):
    client = login(ml["credit_admin"])
    url = reverse("dataset-list")
    bad = client.post(url, {"name": "x", "department": credit.pk, "file": SimpleUploadedFile("d.jsonl", BAD)})
    assert bad.status_code == 400 and bad.json()["errors"][0] == {"line": 2, "field": "instruction", "reason": "missing or empty"}
    refused = client.post(url, {"name": "x", "department": hr.pk, "file": SimpleUploadedFile("d.jsonl", GOOD)})
    assert refused.status_code == 400 and "department" in refused.json()
    ok = client.post(url, {"name": "x", "department": credit.pk, "file": SimpleUploadedFile("d.jsonl", GOOD)})
    assert ok.status_code == 201 and ok.json()["row_count"] == 3
    version_id = ok.json()["id"]
    rows = client.get(reverse("dataset-version-rows", args=[version_id])).json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert rows[0]["messages"][0] == {"role": "user", "content": "如何申请年假？"}
    cleaned = client.post(reverse("dataset-version-clean", args=[version_id]), {"mask_pii": True}, content_type="application/json")
    assert cleaned.status_code == 201 and cleaned.json()["number"] == 2 and cleaned.json()["row_count"] == 2
    other = login(ml["hr_admin"])
    assert other.get(reverse("dataset-version-rows", args=[version_id])).status_code == 404
    assert other.post(reverse("dataset-version-clean", args=[version_id]), {}, content_type="application/json").status_code == 404


def test_markup_in_rows_is_escaped_on_the_version_page(ml, credit, tokenizer_setting):
    client = login(ml["credit_admin"])
    content = json.dumps({"instruction": "<script>alert(1)</script>", "output": "<img src=x onerror=alert(1)>"}).encode()
    upload(client, content + b"\n" + GOOD, department=credit.pk)
    dataset = Dataset.objects.get()
    html = client.get(reverse("training:datasets:version", args=[dataset.pk, 1])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html or "&lt;" in html


def test_api_preview_shows_the_loss_mask(ml, credit, tokenizer_setting):
    client = login(ml["credit_admin"])
    ok = client.post(reverse("dataset-list"), {"name": "x", "department": credit.pk, "file": SimpleUploadedFile("d.jsonl", GOOD)})
    version_id = ok.json()["id"]
    preview = client.get(reverse("dataset-version-preview", args=[version_id]) + "?row=2&max_length=64").json()
    assert preview["end_of_turn_in_loss"] and not preview["truncated"]
    assert "".join(t["text"] for t in preview["tokens"] if t["loss"]) == "拨打13812345678<|im_end|>"
    assert client.get(reverse("dataset-version-preview", args=[version_id]) + "?row=99").status_code == 404
    assert login(ml["hr_admin"]).get(reverse("dataset-version-preview", args=[version_id])).status_code == 404
