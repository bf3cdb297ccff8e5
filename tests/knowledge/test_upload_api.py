"""Uploads through the API (issue 12): multipart POSTs from a real HTTP client (the standard
library's http.client) to a live server, with an API key, as a script would send them."""

import http.client
import io
import json
import uuid
import zipfile
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from accounts.services import api_key_create
from knowledge.models import Document, DocumentVersion, IngestionStatus
from tests.factories import KnowledgeBaseFactory, document, ingest


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


@pytest.fixture
def post_files(live_server):
    """POST multipart form data with files; returns (status, JSON body)."""

    def post(path: str, user, *, files: list[tuple[str, str, bytes]], fields: dict | None = None):
        key = api_key_create(user=user, name="upload test")[1]
        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for name, value in (fields or {}).items():
            body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for field, filename, content in files:
            body.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            body.write(content)
            body.write(b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        url = urlsplit(live_server.url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            connection.request(
                "POST", path, body=body.getvalue(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        return response.status, (json.loads(raw) if raw else None)

    return post


def test_files_become_documents_with_the_upload_pages_outcomes(post_files, people, kb):
    text = "# 贷款管理办法\n\n第一章 总则\n第一条 为规范贷款管理，制定本办法。\n"
    status, body = post_files(
        f"/api/knowledge-bases/{kb.pk}/uploads/", people["credit_manager"],
        files=[("files", "loan-policy-v1.md", text.encode("gbk")), ("files", "notes.txt", b"Rates rise.\n")],
        fields={"change_note": "imported"},
    )
    assert status == 201, body
    outcomes = {o["name"]: o for o in body["outcomes"]}
    assert {o["status"] for o in outcomes.values()} == {"created"}
    created = DocumentVersion.objects.get(pk=outcomes["loan-policy-v1.md"]["version"])
    assert created.content == text and created.document.title == "贷款管理办法"
    assert created.change_note == "imported" and created.document.knowledge_base == kb
    assert ingest(created.pk).status == IngestionStatus.INDEXED

    # The same files again: unchanged, no new version, with the page's message.
    status, body = post_files(
        f"/api/knowledge-bases/{kb.pk}/uploads/", people["credit_manager"], files=[("files", "notes.txt", b"Rates rise.\n")]
    )
    assert status == 200 and body["outcomes"][0]["status"] == "unchanged"
    assert "Unchanged" in body["outcomes"][0]["message"]
    assert Document.objects.filter(knowledge_base=kb).count() == 2


def test_a_file_becomes_a_new_version_of_a_document(post_files, people, kb):
    doc = document(kb, people["credit_manager"], content="v1 text", title="Loan policy")
    status, body = post_files(
        f"/api/documents/{doc.pk}/uploads/", people["credit_manager"],
        files=[("file", "loan-policy-v2.md", b"# Renamed?\n\nv2 text\n")], fields={"change_note": "v2"},
    )
    assert status == 201, body
    assert body["outcomes"][0]["status"] == "new_version" and body["outcomes"][0]["version_number"] == 2
    doc.refresh_from_db()
    assert doc.latest_version.content == "# Renamed?\n\nv2 text\n" and doc.title == "Loan policy"


def test_attacker_inputs_are_refused_with_the_pages_messages(post_files, people, kb, settings, credit):
    settings.UPLOAD_MAX_BYTES = 1024
    manager = people["credit_manager"]
    url = f"/api/knowledge-bases/{kb.pk}/uploads/"

    status, body = post_files(url, manager, files=[("files", "big.md", b"a" * 5000)])
    assert status == 400 and body["outcomes"][0]["status"] == "refused"
    assert "the limit is 1024 bytes" in body["outcomes"][0]["message"]

    status, body = post_files(url, manager, files=[])
    assert status == 400 and "files" in body

    # A zip whose entries escape: each is listed as skipped, only the safe one is stored.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.md", "# Ok\n")
        archive.writestr("../../etc/passwd.md", "# Escape\n")
        archive.writestr("/abs.md", "# Absolute\n")
    status, body = post_files(url, manager, files=[("files", "bundle.zip", buffer.getvalue())])
    assert status == 201
    by_status = {}
    for outcome in body["outcomes"]:
        by_status.setdefault(outcome["status"], []).append(outcome["name"])
    assert by_status == {"skipped": ["../../etc/passwd.md", "/abs.md"], "created": ["ok.md"]}

    # A zip bomb: stored as the archive itself, whose ingestion fails as a bomb; nothing unpacked.
    settings.UPLOAD_MAX_BYTES = 200 * 1024
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.md", b"0" * (20 * 1024 * 1024))
    status, body = post_files(url, manager, files=[("files", "bomb.zip", bomb.getvalue())])
    assert [o["status"] for o in body["outcomes"]] == ["created"] and body["outcomes"][0]["name"] == "bomb.zip"
    row = ingest(body["outcomes"][0]["version"])
    assert row.status == IngestionStatus.FAILED and row.error_code == "zip_bomb"
    assert not Document.objects.filter(knowledge_base=kb, title="huge").exists()

    # A lying extension: stored, then refused by ingestion with the page's message.
    status, body = post_files(url, manager, files=[("files", "photo.pdf", b"\x89PNG\r\n\x1a\n" + b"x" * 100)])
    row = ingest(body["outcomes"][0]["version"])
    assert row.status == IngestionStatus.FAILED and row.error_code == "type_mismatch"


def test_someone_elses_document_or_knowledge_base_is_a_404_like_a_missing_one(post_files, people, kb, hr):
    hr_kb = KnowledgeBaseFactory(department=hr, review_required=False)
    hr_doc = document(hr_kb, people["hr_manager"], content="HR only", title="Salaries")
    manager = people["credit_manager"]
    files = [("file", "x.md", b"# x\n")]
    hidden = post_files(f"/api/documents/{hr_doc.pk}/uploads/", manager, files=files)
    missing = post_files("/api/documents/999999/uploads/", manager, files=files)
    assert hidden[0] == missing[0] == 404 and hidden[1] == missing[1]
    hidden = post_files(f"/api/knowledge-bases/{hr_kb.pk}/uploads/", manager, files=[("files", "x.md", b"# x\n")])
    missing = post_files("/api/knowledge-bases/999999/uploads/", manager, files=[("files", "x.md", b"# x\n")])
    assert hidden[0] == missing[0] == 404 and hidden[1] == missing[1]
    assert hr_doc.versions.count() == 1
    # A reader of the knowledge base may not upload into it.
    status, _body = post_files(f"/api/knowledge-bases/{kb.pk}/uploads/", people["credit_employee"],
                               files=[("files", "x.md", b"# x\n")])
    assert status == 403 and not Document.objects.filter(knowledge_base=kb).exists()


def test_uploads_are_in_the_openapi_schema(db, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/knowledge-bases/{id}/uploads/:" in text and "/api/documents/{id}/uploads/:" in text
    assert "multipart/form-data" in text and "skipped: an entry of a" in text
