from django.core.management import call_command


def test_openapi_schema_builds_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn turns every drf-spectacular warning or error into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/me/", "/api/departments/", "/api/memberships/", "/api/jobs/"):
        assert path in text


def test_schema_and_docs_need_a_signed_in_user(client, people):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(people["credit_employee"])
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"https://" not in docs.content.split(b"<body")[0]  # swagger assets served locally, no CDN
