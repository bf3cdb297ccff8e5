"""The HTTP source against a real HTTP server on 127.0.0.1, started by the test."""

from knowledge.models import Document, DocumentVersion
from sources.models import AllowedHost, SourceKind, SyncStatus
from sources.services import source_create, source_sync

RECORDS = {"data": {"items": [
    {"id": "a", "name": "Opening hours", "text": "9 to 5.", "meta": {"team": "Front desk"}},
    {"id": "b", "name": "Holidays", "text": "Closed on 1 May.", "meta": {"team": "HR"}},
]}}


def http_source(kb, manager, server, **overrides):
    fields = {
        "name": "Handbook API",
        "url": server.url("/records"),
        "records_path": "data.items",
        "key_field": "id",
        "title_template": "{name}",
        "body_template": "{{ text }}\n\nOwner: {{ meta.team }}",
        "auth_header_name": "Authorization",
        "auth_header_value": "Bearer t0ken-value",
    }
    fields.update(overrides)
    return source_create(actor=manager, knowledge_base=kb, kind=SourceKind.HTTP, **fields)


def allow(host="127.0.0.1", private=True):
    return AllowedHost.objects.create(host=host, allow_private_addresses=private)


def test_loopback_is_refused_unless_the_host_is_allowlisted(kb, manager, http_server):
    http_server.json("/records", RECORDS)
    source = http_source(kb, manager, http_server)

    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error == f"The host “127.0.0.1” (port {http_server.port}) is not on the allowlist of HTTP sources."

    entry = allow(private=False)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert "private, loopback or link-local" in sync.error
    assert http_server.requests == []  # refused before any connection

    entry.allow_private_addresses = True
    entry.save()
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.created) == (SyncStatus.SUCCEEDED, 2)
    assert http_server.requests[-1]["headers"]["Authorization"] == "Bearer t0ken-value"
    hours = Document.objects.get(knowledge_base=kb, title="Opening hours")
    assert hours.latest_version.content == "9 to 5.\n\nOwner: Front desk"


def test_an_unchanged_resync_creates_nothing_and_a_change_one_version(kb, manager, http_server):
    allow()
    http_server.json("/records", RECORDS)
    source = http_source(kb, manager, http_server)
    assert source_sync(source_id=source.pk).created == 2
    versions = DocumentVersion.objects.count()
    again = source_sync(source_id=source.pk)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert DocumentVersion.objects.count() == versions

    changed = {"data": {"items": [dict(RECORDS["data"]["items"][0], text="8 to 6."), RECORDS["data"]["items"][1]]}}
    http_server.json("/records", changed)
    third = source_sync(source_id=source.pk)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    assert DocumentVersion.objects.count() == versions + 1


def test_the_response_size_is_limited(kb, manager, http_server, settings):
    settings.SOURCES_HTTP_MAX_BYTES = 100
    allow()
    http_server.json("/records", RECORDS)
    sync = source_sync(source_id=http_source(kb, manager, http_server).pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error == "The answer is larger than the limit of 100 bytes."
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_a_redirect_to_a_host_off_the_allowlist_is_refused(kb, manager, http_server):
    allow("127.0.0.1")
    http_server.routes["/records"] = (302, {"Location": http_server.url("/elsewhere", host="localhost")}, b"")
    http_server.json("/elsewhere", RECORDS)
    sync = source_sync(source_id=http_source(kb, manager, http_server).pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error == f"The host “localhost” (port {http_server.port}) is not on the allowlist of HTTP sources."
    assert [r["path"] for r in http_server.requests] == ["/records"]


def test_the_credentials_stay_with_the_configured_host_on_redirect(kb, manager, http_server):
    allow("127.0.0.1")
    allow("localhost")
    http_server.routes["/records"] = (302, {"Location": http_server.url("/elsewhere", host="localhost")}, b"")
    http_server.json("/elsewhere", RECORDS)
    sync = source_sync(source_id=http_source(kb, manager, http_server).pk)
    assert sync.created == 2
    assert "Authorization" in http_server.requests[0]["headers"]
    assert "Authorization" not in http_server.requests[1]["headers"]


def test_bad_answers_fail_with_a_clear_message(kb, manager, http_server):
    allow()
    http_server.routes["/records"] = (200, {"Content-Type": "application/json"}, b"not json")
    source = http_source(kb, manager, http_server)
    assert source_sync(source_id=source.pk).error.startswith("The answer is not valid JSON")
    http_server.json("/records", {"data": {}})
    assert source_sync(source_id=source.pk).error == "The JSON answer has no “data.items”."
    http_server.json("/records", {}, status=500)
    assert source_sync(source_id=source.pk).error == "The server answered HTTP 500."


def test_the_auth_header_is_encrypted_at_rest(kb, manager, http_server):
    from django.db import connection

    source = http_source(kb, manager, http_server)
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(s)::text FROM sources_source s WHERE id = %s", [source.pk])
        assert "t0ken-value" not in cursor.fetchone()[0]
    source.refresh_from_db()
    assert source.auth_header_value == "Bearer t0ken-value"


def test_the_auth_header_is_not_resent_when_a_redirect_changes_the_port(kb, manager, http_server):
    other = type(http_server)()
    other.thread.start()
    try:
        AllowedHost.objects.create(host="127.0.0.1", allow_private_addresses=True)  # every port
        other.json("/elsewhere", RECORDS)
        http_server.routes["/records"] = (302, {"Location": other.url("/elsewhere")}, b"")
        sync = source_sync(source_id=http_source(kb, manager, http_server).pk)
        assert sync.created == 2
        assert "Authorization" in http_server.requests[0]["headers"]
        assert "Authorization" not in other.requests[0]["headers"]
        # A redirect back to the same scheme, host and port keeps it.
        http_server.routes["/records"] = (302, {"Location": http_server.url("/same")}, b"")
        http_server.json("/same", RECORDS)
        source_sync(source_id=http_source(kb, manager, http_server, name="Same origin").pk)
        assert http_server.requests[-1]["path"] == "/same" and "Authorization" in http_server.requests[-1]["headers"]
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()


def test_an_allowlist_entry_with_a_port_allows_only_that_port(kb, manager, http_server):
    AllowedHost.objects.create(host="127.0.0.1", port=http_server.port + 1, allow_private_addresses=True)
    http_server.json("/records", RECORDS)
    source = http_source(kb, manager, http_server)
    assert "is not on the allowlist" in source_sync(source_id=source.pk).error
    AllowedHost.objects.create(host="127.0.0.1", port=http_server.port, allow_private_addresses=True)
    assert source_sync(source_id=source.pk).created == 2


def test_a_deeply_nested_answer_fails_cleanly(kb, manager, http_server):
    allow()
    http_server.routes["/records"] = (200, {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000)
    sync = source_sync(source_id=http_source(kb, manager, http_server).pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, "The answer is nested too deeply.")


import ipaddress  # noqa: E402

import pytest  # noqa: E402

from sources.fetch_http import _is_private  # noqa: E402


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",         # 6to4 of 127.0.0.1
    "2002:a00:1::1",          # 6to4 of 10.0.0.1
    "2002:808:808::1",        # 6to4 even of a public IPv4: the relay is outside our control
    "fec0::1",                # site-local
    "64:ff9b::7f00:1",        # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",     # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b:1::a00:1",       # local-use NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::1", "fc00::1", "fe80::1", "127.0.0.1", "10.1.2.3", "169.254.169.254",
    "100.64.0.1", "0.0.0.0",
])
def test_addresses_that_reach_inside_are_private(address):
    assert _is_private(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address):
    assert not _is_private(ipaddress.ip_address(address))
