"""A PostgreSQL source whose role may run dblink: the query could open a connection of its own from
the database server, outside the read-only transaction, and write wherever that server reaches. And
one granted a file function by name (pg_read_file: the server's configuration became a document).
The source is a server started from the machine's Debian PostgreSQL 15 binaries, which ship the
dblink extension (the wheel's do not); the place written to is the other second server's table
(tests/sources/conftest.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from psycopg import sql

from knowledge.models import Document
from sources.models import SourceKind, SyncStatus
from sources.services import source_create, source_sync
from tests.second_postgres import READER_PASSWORD, SecondServer
from tests.sources.conftest import allow_second_server

DEBIAN_BINARIES = Path("/usr/lib/postgresql/15/bin")
REFUSED = (
    "The database role may run dblink's {functions}, which open connections of their own from the database server, "
    "outside the read-only transaction; revoke EXECUTE on them or connect with another role."
)
ALL = "dblink, dblink_connect, dblink_exec, dblink_open, dblink_send_query"  # dblink_connect_u: not PUBLIC's


@pytest.fixture(scope="module")
def dblink_server():
    server = SecondServer(bin_dir=DEBIAN_BINARIES)
    server.start()
    with server.connect() as conn:
        conn.execute("CREATE EXTENSION dblink")
    yield server
    server.stop()


class Reader:
    """A login role of its own on the dblink server, with SELECT on a table of one row."""

    def __init__(self, server: SecondServer):
        self.server = server
        suffix = secrets.token_hex(4)
        self.role, self.group, self.table = f"reader_{suffix}", f"group_{suffix}", f"items_{suffix}"

    def execute(self, statement) -> None:
        with self.server.connect() as conn:
            conn.execute(statement)

    def create(self) -> None:
        self.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(READER_PASSWORD)))
        self.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(self.group)))
        self.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, title text, body text)").format(sql.Identifier(self.table)))
        self.execute(sql.SQL("INSERT INTO {} VALUES (1, 'Loan policy', 'Loans need two signatures.')").format(
            sql.Identifier(self.table)))
        self.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(self.table), sql.Identifier(self.role)))

    def drop(self) -> None:
        self.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(self.table)))
        self.execute(sql.SQL("DROP OWNED BY {}, {}").format(sql.Identifier(self.role), sql.Identifier(self.group)))
        self.execute(sql.SQL("DROP ROLE {}, {}").format(sql.Identifier(self.role), sql.Identifier(self.group)))

    def dsn(self) -> str:
        return self.server.dsn(user=self.role)


@pytest.fixture
def reader(db, dblink_server):
    reader = Reader(dblink_server)
    reader.create()
    allow_second_server(dblink_server)
    yield reader
    reader.drop()


@pytest.fixture
def dblink_revoked_from_public(dblink_server):
    """dblink's functions without PUBLIC's EXECUTE (put back afterwards: the server is the module's)."""
    functions = """SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                   JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'dblink'"""
    with dblink_server.connect() as conn:
        names = [row[0] for row in conn.execute(functions)]
        for name in names:
            conn.execute(f"REVOKE EXECUTE ON FUNCTION {name} FROM PUBLIC")
    yield
    with dblink_server.connect() as conn:
        for name in names:
            conn.execute(f"GRANT EXECUTE ON FUNCTION {name} TO PUBLIC")


def planting_source(kb, manager, reader, rows):
    """A query that, through dblink, inserts a row into the other server's table as a role that may."""
    target = f"host={rows.server.host} port={rows.server.port} dbname=warehouse user=source_reader password={READER_PASSWORD}"
    query = (f"SELECT id, title, dblink_exec('{target}', 'INSERT INTO {rows.table} VALUES (99, ''planted'', ''x'', 0)')"
             f" AS body FROM {reader.table}")
    return source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="Planter", dsn=reader.dsn(),
                         query=query, key_field="id", title_template="{title}", body_template="{body}")


def test_a_role_that_may_run_dblink_is_refused_before_its_query(kb, manager, reader, rows):
    sync = source_sync(source_id=planting_source(kb, manager, reader, rows).pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, REFUSED.format(functions=ALL))
    assert rows.count() == 3  # nothing was planted in the other server


def test_through_a_role_it_may_take_too(kb, manager, reader, rows, dblink_revoked_from_public):
    # NOINHERIT: counted as held, as for the file roles (tests/sources/test_dsn_guard.py).
    reader.execute(sql.SQL("GRANT EXECUTE ON FUNCTION dblink_exec(text, text) TO {}").format(sql.Identifier(reader.group)))
    reader.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(reader.group), sql.Identifier(reader.role)))
    reader.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(sql.Identifier(reader.role)))
    sync = source_sync(source_id=planting_source(kb, manager, reader, rows).pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, REFUSED.format(functions="dblink_exec"))
    assert rows.count() == 3


def test_with_dblink_revoked_the_same_server_is_a_source(kb, manager, reader, rows, dblink_revoked_from_public):
    source = source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="Items", dsn=reader.dsn(),
                           query=f"SELECT id, title, body FROM {reader.table}", key_field="id",
                           title_template="{title}", body_template="{body}")
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.created) == (SyncStatus.SUCCEEDED, 1), sync.error
    planter = source_sync(source_id=planting_source(kb, manager, reader, rows).pk)
    assert planter.status == SyncStatus.FAILED and "permission denied for function dblink_exec" in planter.error
    assert rows.count() == 3


@pytest.mark.parametrize("function, signature", [
    ("pg_read_file", "pg_read_file(text)"),
    ("pg_ls_dir", "pg_ls_dir(text)"),
    ("lo_export", "lo_export(oid, text)"),
])
def test_a_role_granted_a_file_function_by_name_is_refused(kb, manager, reader, function, signature,
                                                           dblink_revoked_from_public):
    # Without the file roles: EXECUTE on one function, granted to a group the role belongs to.
    reader.execute(sql.SQL(f"GRANT EXECUTE ON FUNCTION {signature} TO {{}}").format(sql.Identifier(reader.group)))
    reader.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(reader.group), sql.Identifier(reader.role)))
    source = source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, name="Config", dsn=reader.dsn(),
                           query="SELECT 1 AS id, 'conf' AS title, pg_read_file('postgresql.conf') AS body",
                           key_field="id", title_template="{title}", body_template="{body}")
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, (
        f"The database role may run {function}, which read or write the database server's files; revoke EXECUTE on "
        "them or connect with another role."))
    assert not Document.objects.filter(knowledge_base=kb).exists()
