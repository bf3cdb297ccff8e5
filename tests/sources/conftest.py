"""Fixtures for the source tests: a second, real PostgreSQL server on 127.0.0.1 (another company
database, allowlisted host:port) holding a schema of rows, and a real HTTP server on 127.0.0.1
in a thread. The product's own database is never a source's target (tests/sources/test_dsn_guard.py)."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from django.db import connection
from psycopg.conninfo import make_conninfo

from accounts.models import Role
from sources.models import AllowedHost, SourceKind
from tests.factories import KnowledgeBaseFactory, member
from tests.second_postgres import SecondServer


def database_dsn() -> str:
    """The product's own test database as a DSN (a place sources must never reach)."""
    s = connection.settings_dict
    # The embedded server is reached through a Unix socket: its directory is in OPTIONS["host"].
    options = {k: v for k, v in s.get("OPTIONS", {}).items() if k != "options"}
    params = {**options, "dbname": s["NAME"], "user": s.get("USER") or None,
              "password": s.get("PASSWORD") or None}
    if s.get("HOST"):
        params["host"] = s["HOST"]
    if s.get("PORT"):
        params["port"] = s["PORT"]
    return make_conninfo(**{k: v for k, v in params.items() if v})


@pytest.fixture(scope="session")
def second_server():
    server = SecondServer()
    server.start()
    yield server
    server.stop()


class RowTable:
    """A schema of rows in the second server's `warehouse` database, readable by `source_reader`."""

    def __init__(self, server: SecondServer):
        self.server = server
        self.schema = f"src_{uuid.uuid4().hex[:10]}"
        self.table = f"{self.schema}.items"
        self.source_dsn = server.dsn()

    def execute(self, sql: str, params=None) -> None:
        with self.server.connect() as conn:
            conn.execute(sql, params)

    def count(self) -> int:
        with self.server.connect() as conn:
            return conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]


def allow_second_server(server: SecondServer, **fields) -> AllowedHost:
    return AllowedHost.objects.create(
        source_kind=SourceKind.SQL, host=server.host, port=server.port, allow_private_addresses=True, **fields
    )


@pytest.fixture
def rows(db, second_server):
    table = RowTable(second_server)
    table.execute(f"CREATE SCHEMA {table.schema}")
    table.execute(f"CREATE TABLE {table.table} (id int PRIMARY KEY, title text, body text, amount numeric)")
    table.execute(
        f"INSERT INTO {table.table} VALUES (1, 'Loan policy', 'Loans need **two** signatures.', 100.50),"
        " (2, 'Card policy', 'Cards expire after 3 years.', 20), (3, 'Fees', 'Fees are listed monthly.', 0)"
    )
    table.execute(f"GRANT USAGE ON SCHEMA {table.schema} TO source_reader, file_reader, nested_file_reader, writer_prog")
    table.execute(f"GRANT SELECT, INSERT ON {table.table} TO source_reader, file_reader, nested_file_reader, writer_prog")
    allow_second_server(second_server)
    yield table
    table.execute(f"DROP SCHEMA {table.schema} CASCADE")


@pytest.fixture
def kb(people, credit):
    return KnowledgeBaseFactory(name="Credit policies", department=credit)


@pytest.fixture
def manager(people):
    return people["credit_manager"]


class JSONServer:
    """Serves `self.routes[path] = (status, headers, body bytes)`; records request headers."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, headers, body = server.routes.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def json(self, path: str, data, status: int = 200) -> None:
        self.routes[path] = (status, {"Content-Type": "application/json"}, json.dumps(data).encode())


@pytest.fixture
def http_server():
    server = JSONServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def faq_db(tmp_path, settings):
    """An allowed SQLite file with a `faq` table (code, q, a, w); returns a function that adds rows
    and the DSN in `faq_db.dsn`."""
    import sqlite3

    settings.SOURCES_SQLITE_DIR = str(tmp_path)
    path = tmp_path / "faq.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE faq (code TEXT, q TEXT, a TEXT, w INTEGER)")

    def add(*rows):
        with sqlite3.connect(path) as db:
            db.executemany("INSERT INTO faq VALUES (?, ?, ?, ?)", [(*row, None)[:4] for row in rows])

    add.dsn = f"sqlite:///{path}"
    return add


def faq_source(actor, kb, dsn, **overrides):
    from sources.services import source_create

    fields = {"name": "FAQ", "dsn": dsn, "query": "SELECT * FROM faq", "key_field": "code", "title_template": "{q}",
              "body_template": "{a}", **overrides}
    return source_create(actor=actor, knowledge_base=kb, kind=SourceKind.SQL, **fields)
