"""Attacker inputs on sources and uploads: a stored credential goes only where it was entered for,
a connection string or a file name the server cannot take is a clear refusal, never a 500."""

import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Role
from knowledge.models import DocumentVersion
from sources.models import AllowedHost, SourceKind
from sources.services import source_create, source_sync, source_update
from tests.factories import KnowledgeBaseFactory, member
from tests.sources.conftest import faq_source

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_stored_auth_header_is_not_sent_to_another_host_or_as_another_header(kb, credit, people, http_server):
    AllowedHost.objects.create(host="127.0.0.1", allow_private_addresses=True)
    AllowedHost.objects.create(host="localhost", allow_private_addresses=True)
    http_server.json("/records", {"items": [{"id": "1", "t": "x"}]})
    source = source_create(
        actor=people["credit_manager"], knowledge_base=kb, kind=SourceKind.HTTP, name="Vendor API",
        url=http_server.url("/records"), records_path="items", key_field="id", title_template="{t}",
        body_template="{t}", auth_header_name="Authorization", auth_header_value="Bearer vendor-secret",
    )
    # Another manager, who can never read the stored token, points it at a host or header of their choosing.
    other = member(credit, Role.KNOWLEDGE_MANAGER, "other_manager")
    for change in ({"url": http_server.url("/records", host="localhost")}, {"auth_header_name": "X-Echo"}):
        with pytest.raises(ValidationError) as refused:
            source_update(actor=other, source=source, **change)
        assert "enter the header value again" in str(refused.value.message_dict["auth_header_value"])
    source.refresh_from_db()
    assert source.url == http_server.url("/records") and source.auth_header_name == "Authorization"
    # Another path on the same origin keeps it; re-entering it (or removing it) lets it go elsewhere.
    source_update(actor=other, source=source, url=http_server.url("/records?page=1"))
    source_update(actor=other, source=source, url=http_server.url("/records", host="localhost"),
                  auth_header_value="Bearer my-own")
    source_sync(source_id=source.pk)
    assert http_server.requests[-1]["headers"].get("Authorization") == "Bearer my-own"
    # Through the API the refusal is a 400 on the field.
    response = _client(other).patch(f"/api/sources/{source.pk}/", json.dumps({"auth_header_name": "X-Echo"}),
                                    content_type="application/json")
    assert response.status_code == 400 and "auth_header_value" in response.json()


@pytest.mark.parametrize("dsn", ["mysql://[::1/db", "mysql://u:p@[bad/db", "sqlite://[x/y.db"])
def test_a_connection_string_that_cannot_be_read_is_a_form_error(people, credit, dsn, settings, tmp_path):
    settings.SOURCES_SQLITE_DIR = str(tmp_path)
    kb = KnowledgeBaseFactory(department=credit)
    client = _client(people["credit_manager"])
    api = client.post("/api/sources/", json.dumps({
        "knowledge_base": kb.pk, "kind": "sql", "name": "Warehouse", "dsn": dsn, "query": "SELECT 1 AS id",
        "key_field": "id", "title_template": "{id}", "body_template": "{id}"}), content_type="application/json")
    assert api.status_code == 400 and "cannot be read" in api.content.decode()
    page = client.post(f"/sources/knowledge-bases/{kb.pk}/new/sql/", {
        "name": "Warehouse2", "dsn": dsn, "query": "SELECT 1 AS id", "key_field": "id", "title_template": "{id}",
        "body_template": "{id}", "enabled": "on", "timeout_seconds": "30", "max_records": "10"})
    assert page.status_code == 400


def test_an_archive_entry_with_a_name_longer_than_the_filesystem_takes(people, credit, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    kb = KnowledgeBaseFactory(department=credit)
    long_name = "报告" * 80 + ".md"  # 480 bytes in UTF-8: more than a file name may have (255)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("d/" + long_name, "# Quarterly report\n\nLoans grew.")
        zf.writestr("ok.md", "# Ok\n\nBody.")
    response = _client(people["credit_manager"]).post(
        f"/api/knowledge-bases/{kb.pk}/uploads/", {"files": [SimpleUploadedFile("x.zip", archive.getvalue())]})
    assert response.status_code == 201, response.content[:300]
    assert {o["status"] for o in response.json()["outcomes"]} == {"created"}
    version = DocumentVersion.objects.get(file_name=long_name)  # the whole name is kept for people
    stored = version.original_file.name.rsplit("/", 1)[1]
    assert len(stored.encode()) <= 200 and stored.endswith(".md") and stored.startswith("报告")
    assert version.original_file.read().startswith(b"# Quarterly report")


@pytest.mark.parametrize("template, message", [
    ('{{ q|ljust:"2000000000" }}', "A width over 1000"),
    ('{{ q|center:"99999999" }}', "A width over 1000"),
    ('{{ q|stringformat:"999999999s" }}', "A width over 1000"),
    ('{{ q|floatformat:"99999" }}', "More than 50 decimals"),
    ("{% lorem 100000000 w %}", "“lorem” is not available"),
    ("{% debug %}", "“debug” is not available"),
])
def test_a_template_that_would_make_a_huge_document_is_refused_at_save(kb, people, template, message, faq_db):
    """One line of template could make every record gigabytes long and take the ingest worker down."""
    with pytest.raises(ValidationError) as refused:
        faq_source(people["credit_manager"], kb, faq_db.dsn, body_template=template)
    assert message in str(refused.value)


def test_a_width_that_comes_from_the_record_fails_that_record_only(kb, people, faq_db):
    faq_db(("A1", "How?", "Like this.", 12), ("A2", "Why?", "Because.", 2000000000))
    source = faq_source(people["credit_manager"], kb, faq_db.dsn, body_template="{{ a|ljust:w }}|")
    sync = source_sync(source_id=source.pk)
    assert sync.created == 1 and sync.failed == 1
    assert "A width over 1000" in sync.record_errors[0]["error"]
    assert DocumentVersion.objects.filter(document__knowledge_base=kb).get().content.startswith("Like this.  |")
