"""Requests that used to break the server: deeply nested or malformed JSON on every endpoint,
bodies on actions that take none, and a request blocked by a held lock."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from config.pgserver import NO_PASSFILE
from config.settings.database import statement_limit_options
from core.models import AuditEntry
from knowledge.models import Document, DocumentState
from accounts.services import api_key_create
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document

NESTED = "[" * 5000 + "]" * 5000
NESTED_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
UNSAFE = ("post", "put", "patch", "delete")


def api_operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API that takes a body, from the schema of the real URL conf."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "999999", path)
        operations += [(method, concrete) for method in methods if method in UNSAFE]
    return operations


def test_the_walk_covers_the_api():
    operations = api_operations()
    assert ("post", "/api/auth/token/") in operations
    assert ("post", "/api/documents/999999/archive/") in operations
    assert len(operations) >= 19


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT])
def test_a_deeply_nested_body_is_a_400_on_every_endpoint(people, body):
    admin = login(people["superuser"])
    anonymous = Client()
    _, key = api_key_create(user=people["superuser"])
    for method, path in api_operations():
        client = anonymous if path in ("/api/auth/token/", "/v1/chat/completions") else admin
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if path.startswith("/v1/") else {}
        response = getattr(client, method)(path, body, content_type="application/json", **headers)
        assert response.status_code == 400, (method, path, response.status_code)
        payload = response.json()
        message = payload["error"]["message"] if path.startswith("/v1/") else payload["detail"]  # OpenAI's shape
        assert "nested more than 64 levels" in message, (method, path)


def test_the_token_endpoint_answers_400_to_nested_json_anonymously(db):
    response = Client().post("/api/auth/token/", NESTED, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The JSON body is nested more than 64 levels deep."}


@pytest.mark.parametrize("body", [
    "{", "[1,]", '{"username": "a",}', "NaN", '{"a": Infinity}', "\"unterminated", "1" * 5000,
    b"\xff\xfe{}", '{"a": "\\ud800"}' + "}", "",
])
def test_bad_json_of_any_shape_is_a_400(db, body):
    response = Client().post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    # A parse error says what is wrong; an empty body parses as no data and gets the field errors.
    assert response.json()["detail"] if body else response.json()["username"]


def test_moderate_nesting_under_the_limit_still_works(people):
    body = {"username": "root", "password": "x", "extra": [[[[[[[[[[1]]]]]]]]]]}
    response = Client().post("/api/auth/token/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and "non_field_errors" in response.json()  # parsed, then refused as bad credentials


@pytest.fixture
def draft(people, credit):
    kb = KnowledgeBaseFactory(name="Policies", department=credit)
    return document(kb, people["credit_manager"], title="Loan policy")


@pytest.mark.parametrize("body", ["{not json", NESTED, '{"state": "published"}', "[1, 2]"])
def test_archive_with_a_malformed_or_unexpected_body_is_a_400_and_changes_nothing(draft, people, body):
    client = login(people["credit_manager"])
    audit_before = AuditEntry.objects.count()
    response = client.post(f"/api/documents/{draft.pk}/archive/", body, content_type="application/json")
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.state != DocumentState.ARCHIVED
    assert AuditEntry.objects.count() == audit_before


def test_archive_with_no_body_or_an_empty_object_works(draft, people):
    client = login(people["credit_manager"])
    assert client.post(f"/api/documents/{draft.pk}/archive/", "{}", content_type="application/json").status_code == 200
    draft.refresh_from_db()
    assert draft.state == DocumentState.ARCHIVED


def test_a_source_sync_with_a_malformed_body_queues_nothing(people, credit):
    from sources.models import AllowedHost, SourceKind, SourceSync
    from sources.services import source_create

    kb = KnowledgeBaseFactory(name="Policies", department=credit)
    AllowedHost.objects.create(source_kind=SourceKind.HTTP, host="api.example.com")
    source = source_create(actor=people["credit_manager"], knowledge_base=kb, kind=SourceKind.HTTP, name="API",
                           url="https://api.example.com/x", key_field="id", title_template="{id}", body_template="{id}")
    response = login(people["credit_manager"]).post(f"/api/sources/{source.pk}/sync/", "{]", content_type="application/json")
    assert response.status_code == 400
    assert not SourceSync.objects.exists()


# --- a request blocked by a held lock ---------------------------------------------------------------


@pytest.fixture
def short_lock_timeout(monkeypatch):
    """The request-path limits as configured by environment, applied to fresh connections."""
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "20000")
    options = connection.settings_dict["OPTIONS"]
    saved = options["options"]
    options["options"] = statement_limit_options("web")
    connection.close()
    yield
    options["options"] = saved
    connection.close()


def hold_row_lock(table: str, pk: int):
    db = connection.settings_dict
    holder = psycopg.connect(host=db["OPTIONS"]["host"], dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"],
                             passfile=NO_PASSFILE)
    holder.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])
    return holder  # the transaction stays open until closed


@pytest.mark.django_db(transaction=True)
def test_a_request_blocked_by_a_held_lock_fails_cleanly_with_503(short_lock_timeout, people, credit):
    kb = KnowledgeBaseFactory(name="Policies", department=credit)
    doc = document(kb, people["credit_manager"], title="Loan policy")
    client = login(people["credit_manager"])
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "300ms"
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "20s"
    audit_before = AuditEntry.objects.count()
    holder = hold_row_lock("knowledge_document", doc.pk)
    try:
        response = client.post(f"/api/documents/{doc.pk}/archive/", content_type="application/json")
        page = client.post(f"/knowledge/documents/{doc.pk}/archive/")
    finally:
        holder.close()
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The database is busy with other work")
    assert response["Retry-After"] == "5"
    assert page.status_code == 503  # the page answers the same, as a page
    assert "The database is busy" in page.content.decode() and "<h1>" in page.content.decode()
    doc.refresh_from_db()
    assert doc.state != DocumentState.ARCHIVED and AuditEntry.objects.count() == audit_before
    # Once the lock is gone the same request goes through.
    assert client.post(f"/api/documents/{doc.pk}/archive/", content_type="application/json").status_code == 200


def test_background_work_and_commands_get_their_own_limits(monkeypatch):
    from config.settings.database import database_process_kind, statement_limits

    assert database_process_kind(["/x/celery/__main__.py", "-A", "config", "worker"]) == "worker"
    assert database_process_kind(["manage.py", "migrate"]) == "command"
    assert database_process_kind(["manage.py", "runserver"]) == "web"
    assert database_process_kind(["/usr/bin/gunicorn", "config.wsgi"]) == "web"
    assert database_process_kind(["/x/pytest/__main__.py", "-q"]) == "web"
    assert database_process_kind(["bench/ingest.py"]) == "command"
    monkeypatch.setenv("DB_WORKER_LOCK_TIMEOUT_MS", "600000")
    assert statement_limits("worker") == (0, 600000)
    assert statement_limits("web") == (30000, 5000)
