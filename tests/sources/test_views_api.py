"""Pages and API of sources: managers of the owning department only (others 404), credentials
write-only, sync now, history, the allowlist for company admins, and the OpenAPI schema."""

import pytest
from django.core.management import call_command

from sources.models import AllowedHost, Source, SourceKind, SourceSync, SyncStatus
from sources.services import source_create, source_sync_run
from tests.conftest import login


SECRET_DSN = "postgresql://reader:Sup3rSecretPw@db.internal.example/warehouse"


@pytest.fixture
def source(kb, manager):
    # Allowlisted but not resolvable here: saving checks what it can, the sync checks the rest.
    AllowedHost.objects.create(source_kind=SourceKind.SQL, host="db.internal.example", port=5432)
    return source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="Warehouse", dsn=SECRET_DSN,
        query="SELECT 1 AS id", key_field="id", title_template="Row {id}", body_template="Body {id}",
    )


def test_managers_see_the_pages_and_never_the_dsn(kb, manager, source, people):
    for user in (manager, people["credit_admin"]):
        client = login(user)
        for url in (f"/sources/knowledge-bases/{kb.pk}/", f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"Sup3rSecretPw" not in response.content and b"reader" not in response.content
    page = login(manager).get(f"/sources/{source.pk}/").content.decode()
    assert "postgresql://•••@db.internal.example/warehouse" in page


@pytest.mark.parametrize("who", ["credit_employee", "credit_reviewer", "hr_manager", "reviewer", "outsider"])
def test_everyone_else_gets_404(kb, source, people, who):
    client = login(people[who])
    for url in (f"/sources/knowledge-bases/{kb.pk}/", f"/sources/knowledge-bases/{kb.pk}/new/sql/",
                f"/sources/{source.pk}/", f"/sources/{source.pk}/edit/"):
        assert client.get(url).status_code == 404, url
    for url in (f"/sources/{source.pk}/sync/", f"/sources/{source.pk}/delete/"):
        assert client.post(url).status_code == 404, url
    assert client.get(f"/api/sources/{source.pk}/").status_code == 404
    assert client.post(f"/api/sources/{source.pk}/sync/").status_code == 404
    assert client.get("/api/sources/").json()["results"] == []
    assert Source.objects.filter(pk=source.pk).exists() and not SourceSync.objects.exists()


def test_create_sql_source_through_the_page_and_sync_now(kb, manager, rows, django_capture_on_commit_callbacks):
    client = login(manager)
    response = client.post(f"/sources/knowledge-bases/{kb.pk}/new/sql/", {
        "name": "Policies", "dsn": rows.source_dsn, "query": f"SELECT * FROM {rows.table}", "key_field": "id",
        "title_template": "{title}", "body_template": "{body}", "enabled": "on", "schedule_minutes": "60",
        "timeout_seconds": "30", "max_records": "1000",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    source = Source.objects.get(name="Policies")
    assert source.next_sync_at is not None and source.dsn == rows.source_dsn

    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(f"/sources/{source.pk}/sync/").status_code == 302
    assert len(callbacks) == 1  # the Celery task, queued after commit
    sync = SourceSync.objects.get(source=source)
    assert sync.status == SyncStatus.QUEUED and sync.requested_by == manager
    source_sync_run(sync_id=sync.pk)
    page = client.get(f"/sources/{source.pk}/").content.decode()
    assert "Succeeded" in page and 'data-sync="%d"' % sync.pk in page

    # Editing without a DSN keeps it; the schedule can be switched off.
    response = client.post(f"/sources/{source.pk}/edit/", {
        "name": "Policies", "dsn": "", "query": f"SELECT * FROM {rows.table}", "key_field": "id",
        "title_template": "{title}", "body_template": "{body}", "schedule_minutes": "",
        "timeout_seconds": "30", "max_records": "1000",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    source.refresh_from_db()
    assert source.dsn == rows.source_dsn and source.schedule_minutes is None and not source.enabled


def test_a_bad_template_shows_a_form_error(kb, manager):
    response = login(manager).post(f"/sources/knowledge-bases/{kb.pk}/new/http/", {
        "name": "API", "url": "https://api.example.com/x", "key_field": "id", "title_template": "{{ a|nope }}",
        "body_template": "{b}", "timeout_seconds": "30", "max_records": "10", "auth_header_name": "Authorization",
    })
    assert response.status_code == 400
    assert "Template error" in response.content.decode()


@pytest.mark.parametrize("language, message", [
    ("en", "A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “kill”."),
    ("zh-hans", "数据源查询必须是 SELECT（或 WITH、VALUES、TABLE）语句；此查询以“kill”开头。"),
])
def test_a_query_that_is_not_a_read_is_a_form_and_api_error_in_the_users_language(kb, manager, rows, language, message):
    client = login(manager)
    client.cookies["django_language"] = language
    fields = {"name": "Killer", "dsn": rows.source_dsn, "query": "/* SELECT */ KILL 1", "key_field": "id",
              "title_template": "{title}", "body_template": "{body}", "timeout_seconds": "30", "max_records": "10"}
    page = client.post(f"/sources/knowledge-bases/{kb.pk}/new/sql/", fields, HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 400
    assert message in page.content.decode()
    api = client.post("/api/sources/", {**fields, "knowledge_base": kb.pk, "kind": "sql"}, content_type="application/json",
                      HTTP_ACCEPT_LANGUAGE=language)
    assert api.status_code == 400 and api.json()["query"] == [message]
    assert not Source.objects.filter(name="Killer").exists()


def test_api_credentials_are_write_only(kb, manager, people):
    client = login(manager)
    response = client.post("/api/sources/", {
        "knowledge_base": kb.pk, "kind": "http", "name": "API", "url": "https://api.example.com/items",
        "key_field": "id", "title_template": "{name}", "body_template": "{text}",
        "auth_header_value": "Bearer s3cr3t-token",
    }, content_type="application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["has_auth_header"] is True and "auth_header_value" not in body
    listed = client.get(f"/api/sources/?knowledge_base={kb.pk}")
    assert "s3cr3t-token" not in listed.content.decode()
    pk = body["id"]
    assert client.patch(f"/api/sources/{pk}/", {"name": "API 2"}, content_type="application/json").status_code == 200
    assert Source.objects.get(pk=pk).auth_header_value == "Bearer s3cr3t-token"
    response = client.post(f"/api/sources/{pk}/sync/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert len(client.get(f"/api/sources/{pk}/syncs/").json()) == 1
    # An HR manager cannot create a source in Credit's knowledge base.
    response = login(people["hr_manager"]).post("/api/sources/", {
        "knowledge_base": kb.pk, "kind": "http", "name": "X", "url": "https://a.example/", "key_field": "id",
        "title_template": "t", "body_template": "b",
    }, content_type="application/json")
    assert response.status_code in (400, 403)
    assert not Source.objects.filter(name="X").exists()


def test_allowlist_is_for_company_admins(people):
    assert login(people["credit_admin"]).get("/sources/allowed-hosts/").status_code == 404
    assert login(people["credit_manager"]).get("/api/source-allowed-hosts/").json()["results"] == []
    client = login(people["superuser"])
    response = client.post("/sources/allowed-hosts/", {"source_kind": "http", "host": "API.Example.com.", "note": "CRM"})
    assert response.status_code == 302
    entry = AllowedHost.objects.get()
    assert entry.host == "api.example.com" and not entry.allow_private_addresses and entry.port is None
    assert "api.example.com" in client.get("/sources/allowed-hosts/").content.decode()
    # A SQL database server with its port; the same entry twice is refused with a message.
    data = {"source_kind": "sql", "host": "warehouse.example.com", "port": "5433"}
    assert client.post("/sources/allowed-hosts/", data).status_code == 302
    again = client.post("/sources/allowed-hosts/", data)
    assert again.status_code == 400 and "already on the allowlist" in again.content.decode()
    sql_entry = AllowedHost.objects.get(source_kind="sql")
    assert (sql_entry.host, sql_entry.port) == ("warehouse.example.com", 5433)
    api = client.post("/api/source-allowed-hosts/", {"source_kind": "sql", "host": "db2.example.com", "port": 5432},
                      content_type="application/json")
    assert api.status_code == 201 and api.json()["port"] == 5432
    assert client.post(f"/sources/allowed-hosts/{entry.pk}/delete/").status_code == 302
    assert not AllowedHost.objects.filter(source_kind="http").exists()


def test_openapi_schema_has_the_sources_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/sources/{id}/sync/" in text and "/api/source-allowed-hosts/" in text
