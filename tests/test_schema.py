from django.test import Client
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


def _json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, recursively."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    return out


def test_responses_match_the_schema_for_nulls_and_empty_values(people, credit):
    """What schemathesis found: a version without a parent (or whose draft parent the reader may
    not know), a version without a file, and a user without an e-mail address were answered with
    values the schema ruled out (null for an integer, a relative path as a "uri", "" as an "email")."""
    import jsonschema
    import yaml

    from tests.factories import KnowledgeBaseFactory, published_document

    kb = KnowledgeBaseFactory(department=credit)
    document = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    client = Client()
    client.force_login(people["credit_employee"])
    schema = yaml.safe_load(client.get("/api/schema/").content)
    defs = {name: _json_schema(s) for name, s in schema["components"]["schemas"].items()}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER

    def check(url, component, many=False):
        response = client.get(url)
        assert response.status_code == 200, url
        data = response.json()
        items = (data["results"] if isinstance(data, dict) else data) if many else [data]
        assert items, url
        for item in items:
            jsonschema.validate(item, {"$ref": f"#/$defs/{component}", "$defs": defs}, format_checker=checker)

    people["credit_employee"].email = ""
    people["credit_employee"].save(update_fields=["email"])
    check("/api/me/", "Me")
    check(f"/api/documents/{document.pk}/", "Document")
    check(f"/api/versions/{document.live_version_id}/", "Version")
    check(f"/api/documents/{document.pk}/versions/", "VersionSummary", many=True)
