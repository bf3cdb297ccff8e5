"""SQL sources never reach the product's own database or files.

Against the real embedded server (the product's own) and a real second PostgreSQL server on
127.0.0.1 (another company database, allowlisted host:port), with real roles created here."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from config.env import VAR_DIR
from django.conf import settings
from django.db import connection
from psycopg import sql

from config.pgserver import NO_PASSFILE
from knowledge.models import Document
from sources.dsn_guard import RefusedDSN, check_postgresql_session, product_database, vet_dsn
from sources.models import AllowedHost, Source, SourceKind, SourceSync, SyncStatus
from sources.services import source_create, source_sync, source_sync_run
from tests.conftest import login
from tests.second_postgres import READER_PASSWORD

OWN = "This connection reaches the product's own database, which sources may never read."
SOCKET = "Connections through a Unix socket are not allowed; give the database server's host name and port."


def product_forms() -> dict[str, str]:
    """The product's own database, written every way a knowledge manager might try."""
    db = connection.settings_dict
    socket_dir = db["OPTIONS"]["host"]
    name, user, password = db["NAME"], db["USER"], db["PASSWORD"]
    return {
        "socket directory (query)": f"postgresql://{user}:{password}@/{name}?host={socket_dir}",
        "socket directory (%2F)": f"postgresql://{user}:{password}@{quote(socket_dir, safe='')}/{name}",
        "socket directory (key=value)": f"host={socket_dir} dbname={name} user={user} password={password}",
        "/tmp": f"postgresql://{user}@/{name}?host=/tmp",
        "/var/run/postgresql": "host=/var/run/postgresql dbname=postgres user=postgres",
        "empty host": f"postgresql:///{name}",
        "abstract socket": f"host=@pg dbname={name}",
        "localhost": f"postgresql://{user}:{password}@localhost/{name}",
        "127.0.0.1 with its port": f"postgresql://{user}:{password}@127.0.0.1:{product_database().port}/{name}",
        "::1": f"postgresql://{user}:{password}@[::1]:{product_database().port}/{name}",
        "0.0.0.0": f"postgresql://{user}:{password}@0.0.0.0:{product_database().port}/{name}",
        "DATABASE_URL itself": settings.DATABASE_URL,
        "host list": f"postgresql://{user}@example.com,localhost/{name}",
    }


@pytest.fixture
def loopback_allowlisted(db):
    """The admin allowlisted every loopback name on every port: the product's own server is refused anyway."""
    for host in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        AllowedHost.objects.create(source_kind=SourceKind.SQL, host=host, allow_private_addresses=True)


FORMS = [
    "socket directory (query)", "socket directory (%2F)", "socket directory (key=value)", "/tmp",
    "/var/run/postgresql", "empty host", "abstract socket", "localhost", "127.0.0.1 with its port", "::1",
    "0.0.0.0", "DATABASE_URL itself", "host list",
]


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_the_product_database_is_refused_before_connecting(loopback_allowlisted, form):
    with pytest.raises(RefusedDSN) as refused:
        vet_dsn(product_forms()[form])
    message = str(refused.value)
    assert message in (OWN, SOCKET, "A source connects to one host; lists of hosts are not allowed.")


@pytest.mark.parametrize("dsn, message", [
    ("service=product", "These connection parameters are not allowed in a source: service."),
    ("postgresql://u@db.example.com/x?hostaddr=127.0.0.1", "These connection parameters are not allowed in a source: hostaddr."),
    ("postgresql://u@db.example.com/x?sslkey=/work/var/secret_key", "These connection parameters are not allowed in a source: sslkey."),
    ("postgresql://u@db.example.com/x?passfile=/root/.pgpass", "These connection parameters are not allowed in a source: passfile."),
    ("host=db.example.com port=5432,5433 dbname=x", "The port must be one number between 1 and 65535."),
    ("postgresql://u@db.example.com/x", "The database server “db.example.com:5432” is not on the allowlist of SQL sources; a company admin can add it."),
])
def test_parameters_that_reach_around_the_checks_and_unlisted_hosts_are_refused(db, dsn, message):
    with pytest.raises(RefusedDSN) as refused:
        vet_dsn(dsn)
    assert str(refused.value) == message


def test_a_port_specific_entry_allows_only_that_port(db, second_server):
    AllowedHost.objects.create(source_kind=SourceKind.SQL, host="127.0.0.1", port=second_server.port,
                               allow_private_addresses=True)
    assert vet_dsn(second_server.dsn()).port == second_server.port
    with pytest.raises(RefusedDSN, match="not on the allowlist"):
        vet_dsn(second_server.dsn().replace(f":{second_server.port}/", f":{second_server.port + 1}/"))
    # An HTTP entry for the same host does not let SQL sources in, nor the other way round.
    AllowedHost.objects.filter(source_kind=SourceKind.SQL).update(source_kind=SourceKind.HTTP)
    with pytest.raises(RefusedDSN, match="not on the allowlist"):
        vet_dsn(second_server.dsn())


def test_a_loopback_host_needs_allow_private_addresses(db, second_server):
    AllowedHost.objects.create(source_kind=SourceKind.SQL, host="127.0.0.1", port=second_server.port)
    with pytest.raises(RefusedDSN, match="private, loopback or link-local"):
        vet_dsn(second_server.dsn())


# --- roles, checked at connect ------------------------------------------------------------------


def sql_source(kb, manager, dsn: str, table: str, name: str = "Warehouse"):
    return source_create(
        actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name=name, dsn=dsn,
        query=f"SELECT id, title, body FROM {table} ORDER BY id", key_field="id",
        title_template="{title}", body_template="{body}",
    )


@pytest.mark.parametrize("role, expected", [
    ("super_source", "The database role is a superuser (or may become one)"),
    ("file_reader", "The database role is a member of pg_read_server_files"),
    ("nested_file_reader", "The database role is a member of pg_read_server_files"),
    ("writer_prog", "The database role is a member of pg_execute_server_program"),
])
def test_a_role_that_reaches_the_servers_files_is_refused_and_copies_nothing(kb, manager, rows, role, expected):
    source = sql_source(kb, manager, rows.server.dsn(user=role), rows.table)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error.startswith(expected)
    assert sync.created == 0 and not Document.objects.filter(knowledge_base=kb).exists()


def test_a_plain_role_on_an_allowlisted_server_copies_its_rows(kb, manager, rows):
    source = sql_source(kb, manager, rows.source_dsn, rows.table)
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.created) == (SyncStatus.SUCCEEDED, 3)
    assert sorted(Document.objects.filter(knowledge_base=kb).values_list("title", flat=True)) == [
        "Card policy", "Fees", "Loan policy"]


@pytest.fixture
def product_roles(db):
    """Real roles on the product's own (embedded) server, committed (a second connection logs in
    as them) and dropped afterwards."""
    names = {"plain": "guard_plain_role", "files": "guard_files_role"}
    admin = connection.settings_dict
    with _connect_to_product(admin["USER"], admin["PASSWORD"], autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(READER_PASSWORD)))
        conn.execute(sql.SQL("GRANT pg_read_server_files TO {}").format(sql.Identifier(names["files"])))
    yield names
    with _connect_to_product(admin["USER"], admin["PASSWORD"], autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _connect_to_product(user: str, password: str, autocommit: bool = False):
    return psycopg.connect(host=connection.settings_dict["OPTIONS"]["host"], dbname=connection.settings_dict["NAME"],
                           user=user, password=password, passfile=NO_PASSFILE, autocommit=autocommit)


def test_the_session_check_on_the_real_embedded_server(product_roles):
    db = connection.settings_dict
    # The product's superuser: refused as a superuser.
    with _connect_to_product(db["USER"], db["PASSWORD"]) as conn, pytest.raises(RefusedDSN, match="superuser"):
        check_postgresql_session(conn)
    # A role granted pg_read_server_files: refused by name.
    with _connect_to_product(product_roles["files"], READER_PASSWORD) as conn, pytest.raises(RefusedDSN, match="pg_read_server_files"):
        check_postgresql_session(conn)
    # A harmless role that still sits on the product's server (a proxy, a port forward): the server's identity gives it away.
    with _connect_to_product(product_roles["plain"], READER_PASSWORD) as conn, pytest.raises(RefusedDSN) as refused:
        check_postgresql_session(conn)
    assert str(refused.value) == OWN


def test_the_embedded_server_wants_a_password_on_a_private_socket():
    socket_dir = connection.settings_dict["OPTIONS"]["host"]
    assert (os.stat(socket_dir).st_mode & 0o777) == 0o700
    # Under the product's own var/, not the shared /tmp the wheel would pick (the checkout itself may live in /tmp).
    assert Path(socket_dir).resolve().is_relative_to(VAR_DIR.resolve())
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=socket_dir, dbname="postgres", user="postgres", passfile=NO_PASSFILE).close()
    from config.pgserver import SERVER

    lines = [line.split() for line in (SERVER.pgdata / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(fields[-1] == "scram-sha-256" for fields in lines)
    assert (SERVER.password_file.stat().st_mode & 0o777) == 0o600


# --- end to end, through the API, as a knowledge manager ------------------------------------------


def test_a_knowledge_manager_aiming_a_source_at_the_product_database_never_copies_a_row(
    kb, manager, loopback_allowlisted
):
    assert set(product_forms()) == set(FORMS)
    client = login(manager)
    documents_before = Document.objects.count()
    for form, dsn in product_forms().items():
        response = client.post("/api/sources/", {
            "knowledge_base": kb.pk, "kind": "sql", "name": f"Leak {form}", "dsn": dsn,
            "query": "SELECT id, username AS title, password AS body FROM accounts_user",
            "key_field": "id", "title_template": "{title}", "body_template": "{body}",
        }, content_type="application/json")
        assert response.status_code == 400, form
        assert response.json()["dsn"][0] in (OWN, SOCKET, "A source connects to one host; lists of hosts are not allowed."), form
    assert not Source.objects.exists()
    # Stored anyway (say by an older version) and synced through the API: the sync refuses too.
    for form, dsn in product_forms().items():
        source = Source(knowledge_base=kb, kind=SourceKind.SQL, name=f"Old {form}", created_by=manager,
                        query="SELECT id, username AS title, password AS body FROM accounts_user",
                        key_field="id", title_template="{title}", body_template="{body}")
        source.dsn = dsn
        source.save()
        assert client.post(f"/api/sources/{source.pk}/sync/").status_code == 202
        sync = SourceSync.objects.filter(source=source).latest("queued_at")
        sync = source_sync_run(sync_id=sync.pk)
        assert sync.status == SyncStatus.FAILED, form
        assert sync.error in (OWN, SOCKET, "A source connects to one host; lists of hosts are not allowed."), form
        assert sync.created == 0
    assert Document.objects.count() == documents_before == 0


@pytest.fixture
def restore_language():
    from django.utils import translation

    yield
    translation.activate(settings.LANGUAGE_CODE)  # the middleware leaves the request's language active


def test_the_source_page_shows_the_refusal_on_the_connection_field(kb, manager, loopback_allowlisted, restore_language):
    client = login(manager)
    client.cookies["django_language"] = "zh-hans"
    response = client.post(f"/sources/knowledge-bases/{kb.pk}/new/sql/", {
        "name": "Leak", "dsn": settings.DATABASE_URL, "query": "SELECT 1 AS id", "key_field": "id",
        "title_template": "{id}", "body_template": "{id}", "timeout_seconds": 30, "max_records": 10, "enabled": "on",
    }, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    page = response.content.decode()
    assert "不允许通过 Unix 套接字连接" in page or "本产品自身的数据库" in page
    assert not Source.objects.exists()


def test_a_dsn_without_password_never_sends_the_products_pgpassword(kb, manager, rows, monkeypatch):
    # The product's environment may hold PGPASSWORD for its own database; libpq would send it to a
    # source's server whenever the source's DSN names no password.
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    dsn = rows.source_dsn.replace(f":{READER_PASSWORD}@", "@")
    assert READER_PASSWORD not in dsn
    source = sql_source(kb, manager, dsn, rows.table)
    sync = source_sync(source_id=source.pk)
    assert sync.status == SyncStatus.FAILED
    assert "password" in sync.error.lower()
    assert not Document.objects.filter(knowledge_base=kb).exists()
