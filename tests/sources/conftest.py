"""Fixtures for the source tests: a schema of rows in the real PostgreSQL test database, written
through a second connection that commits (the sync reads through its own connection), and a
real HTTP server on 127.0.0.1 in a thread."""

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
from tests.factories import KnowledgeBaseFactory, member


def database_dsn() -> str:
    s = connection.settings_dict
    # The embedded server is reached through a Unix socket: its directory is in OPTIONS["host"].
    params = {**s.get("OPTIONS", {}), "dbname": s["NAME"], "user": s.get("USER") or None,
              "password": s.get("PASSWORD") or None}
    if s.get("HOST"):
        params["host"] = s["HOST"]
    if s.get("PORT"):
        params["port"] = s["PORT"]
    return make_conninfo(**{k: v for k, v in params.items() if v})


class RowTable:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.schema = f"src_{uuid.uuid4().hex[:10]}"
        self.table = f"{self.schema}.items"

    def execute(self, sql: str, params=None) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql, params)

    def count(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]


@pytest.fixture
def rows(db):
    table = RowTable(database_dsn())
    table.execute(f"CREATE SCHEMA {table.schema}")
    table.execute(f"CREATE TABLE {table.table} (id int PRIMARY KEY, title text, body text, amount numeric)")
    table.execute(
        f"INSERT INTO {table.table} VALUES (1, 'Loan policy', 'Loans need **two** signatures.', 100.50),"
        " (2, 'Card policy', 'Cards expire after 3 years.', 20), (3, 'Fees', 'Fees are listed monthly.', 0)"
    )
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
