"""Reading rows from an external SQL database, read-only and with a time limit.

Every DSN is vetted first (sources.dsn_guard: allowlist, never the product's own database, SQLite
only under SOURCES_SQLITE_DIR) and the connection goes to the address that was checked.
PostgreSQL through psycopg (the role is checked at connect: no superuser, no member of
pg_read_server_files and friends; the transaction is read-only and `statement_timeout` is set at
connect time, so even a function with side effects cannot write); SQLite through the standard
library (opened `mode=ro` plus `PRAGMA query_only`); MySQL and MariaDB through PyMySQL (the
account's global privileges are checked at connect: no FILE, SUPER, ALL PRIVILEGES or MySQL 8's
SYSTEM_VARIABLES_ADMIN / BACKUP_ADMIN, through roles neither; a read-only transaction; one
statement per query; MariaDB's `max_statement_time` or MySQL's `max_execution_time`, and the
socket's read timeout behind them).

Before any of that, the query's text must start a read (`read_statement_error`): SELECT, WITH, VALUES
or TABLE after comments and parentheses. The servers' read-only modes stop writes, not statements
such as MySQL's DO, KILL or SET, PostgreSQL's DO blocks or LISTEN, SQLite's ATTACH or PRAGMA.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from typing import Any
from urllib.parse import quote

from django.utils.translation import gettext as _

from .dsn_guard import check_mysql_session, check_postgresql_session, is_mariadb, mysql_error_text, vet_dsn
from .errors import FetchError

CONNECT_TIMEOUT_S = 10


def available_dialects() -> list[str]:
    found = ["postgresql", "sqlite"]
    if importlib.util.find_spec("pymysql"):
        found.append("mysql")
    return found


READ_STATEMENTS = frozenset({"select", "with", "values", "table"})


def _first_word(query: str, dialect: str) -> str:
    """The query's first word, lower-cased, after whitespace, comments and opening parentheses, as
    the dialect reads them: PostgreSQL nests /* */ comments, MySQL also has # comments, needs a space
    after -- and runs /*! … */ (returned as "/*!": never a read). "" when nothing follows."""
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char.isspace() or char == "(":
            i += 1
        elif (query.startswith("--", i) and (dialect != "mysql" or i + 2 == n or query[i + 2].isspace())) or (
            char == "#" and dialect == "mysql"
        ):  # a comment to the end of the line
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif query.startswith("/*", i):
            if dialect == "mysql" and (query.startswith("/*!", i) or query.startswith("/*M!", i)):
                return "/*!"
            depth, i = 1, i + 2
            while i < n and depth:
                if dialect == "postgresql" and query.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif query.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    end = i
    while end < n and (query[end].isalnum() or query[end] == "_"):
        end += 1
    return query[i:end].lower() if end > i else query[i : i + 1]


def read_statement_error(query: str, dialect: str) -> str | None:
    """Why the query is not a read (None when it is): a source query is one SELECT, WITH, VALUES or
    TABLE statement."""
    word = _first_word(query, dialect)
    if word in READ_STATEMENTS:
        return None
    if not word:
        return _("The query has no statement, only comments.")
    return _("A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “%(word)s”.") % {
        "word": word[:40]
    }


def _too_many(limit: int) -> FetchError:
    return FetchError(
        _("The query returned more than %(limit)s rows; raise the record limit or narrow the query.") % {"limit": limit}
    )


def _rows(cursor, limit: int) -> list[dict[str, Any]]:
    rows = cursor.fetchmany(limit + 1)
    if len(rows) > limit:
        raise _too_many(limit)
    columns = [c[0] for c in cursor.description or []]
    return [dict(zip(columns, row)) for row in rows]


def fetch_postgresql(target, query: str, *, timeout_s: int, limit: int) -> list[dict[str, Any]]:
    import psycopg

    options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
    conninfo = target.postgresql_conninfo(options=options, connect_timeout=str(CONNECT_TIMEOUT_S))
    try:
        with psycopg.connect(conninfo, autocommit=False) as conn:
            check_postgresql_session(conn)
            conn.rollback()
            conn.read_only = True
            with conn.cursor() as cursor:
                # Streamed row by row: at most limit+1 rows reach this process, then the query is cancelled.
                stream = cursor.stream(query)
                rows: list[tuple] = []
                try:
                    for row in stream:
                        rows.append(row)
                        if len(rows) > limit:
                            raise _too_many(limit)
                finally:
                    stream.close()
                if cursor.description is None:
                    raise FetchError(_("The query returned no rows: it must be a SELECT."))
                columns = [c.name for c in cursor.description]
            conn.rollback()
            return [dict(zip(columns, row)) for row in rows]
    except psycopg.errors.QueryCanceled as exc:
        raise FetchError(_("The query ran longer than the time limit (%(s)s s).") % {"s": timeout_s}) from exc
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise FetchError(_("The query tried to write; sources are read-only: %(error)s") % {"error": _first_line(exc)}) from exc
    except psycopg.Error as exc:
        raise FetchError(_("Database error: %(error)s") % {"error": _first_line(exc)}) from exc


def fetch_sqlite(target, query: str, *, timeout_s: int, limit: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    try:
        # The path is quoted: a "?" or "#" in a file name cannot add URI parameters.
        conn = sqlite3.connect(f"file:{quote(target.sqlite_path)}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise FetchError(_("Database error: %(error)s") % {"error": exc}) from exc
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        cursor = conn.execute(query)
        if cursor.description is None:
            raise FetchError(_("The query returned no rows: it must be a SELECT."))
        return _rows(cursor, limit)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise FetchError(_("The query ran longer than the time limit (%(s)s s).") % {"s": timeout_s}) from exc
        raise FetchError(_("Database error: %(error)s") % {"error": exc}) from exc
    except sqlite3.Error as exc:
        raise FetchError(_("Database error: %(error)s") % {"error": exc}) from exc
    finally:
        conn.close()


MYSQL_READ_ONLY_TRANSACTION = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
MYSQL_TIME_LIMIT = (1969, 3024)  # MariaDB's max_statement_time, MySQL's max_execution_time
MYSQL_CONNECTION_LOST = 2013  # also the driver's read timeout
# A query can lift the server's limit (MariaDB `SET STATEMENT max_statement_time=0 FOR …`, MySQL's
# MAX_EXECUTION_TIME hint): the socket's read timeout, this much later, still ends the wait.
MYSQL_READ_GRACE_S = 2


def fetch_mysql(target, query: str, *, timeout_s: int, limit: int) -> list[dict[str, Any]]:
    try:
        import pymysql
    except ImportError:
        raise FetchError(_("No MySQL driver is installed on this server.")) from None
    try:
        conn = pymysql.connect(
            host=target.address,
            port=target.port,
            user=target.params.get("user", ""),
            password=target.params.get("password", ""),
            database=target.params.get("dbname", ""),
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=timeout_s + MYSQL_READ_GRACE_S,
            client_flag=0,  # never CLIENT.MULTI_STATEMENTS: a query is one statement
            local_infile=False,  # the server may not ask for this machine's files
        )
    except (pymysql.Error, UnicodeError) as exc:  # a password outside latin-1 cannot be sent
        raise FetchError(_("Database error: %(error)s") % {"error": mysql_error_text(exc)}) from exc
    started = time.monotonic()
    stream = None
    try:
        check_mysql_session(conn)
        conn.rollback()
        cursor = conn.cursor()
        if is_mariadb(conn):
            cursor.execute(f"SET SESSION max_statement_time = {int(timeout_s)}")
        else:
            cursor.execute(f"SET SESSION max_execution_time = {int(timeout_s * 1000)}")
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.execute("START TRANSACTION READ ONLY")
        # Unbuffered: rows come off the socket as they are fetched, so at most limit+1 of them reach
        # this process (the default cursor reads the whole result into memory first). On the way
        # out the connection is closed, not this cursor, whose close would read the rest.
        stream = conn.cursor(pymysql.cursors.SSCursor)
        started = time.monotonic()
        stream.execute(query)
        if stream.description is None:
            raise FetchError(_("The query returned no rows: it must be a SELECT."))
        rows = _rows(stream, limit)
        conn.rollback()
        return rows
    except pymysql.Error as exc:
        code = exc.args[0] if exc.args else None
        if code in MYSQL_TIME_LIMIT or (code == MYSQL_CONNECTION_LOST and time.monotonic() - started >= timeout_s):
            raise FetchError(_("The query ran longer than the time limit (%(s)s s).") % {"s": timeout_s}) from exc
        if code == MYSQL_READ_ONLY_TRANSACTION:
            raise FetchError(
                _("The query tried to write; sources are read-only: %(error)s") % {"error": mysql_error_text(exc)}
            ) from exc
        raise FetchError(_("Database error: %(error)s") % {"error": mysql_error_text(exc)}) from exc
    finally:
        if conn.open:
            conn.close()
        if stream is not None:
            # PyMySQL 1.2's unbuffered cursor and result would read the rest of the result when they
            # are collected, from the connection closed above: tell them there is nothing to read.
            if getattr(stream, "_result", None) is not None:
                stream._result.unbuffered_active = False
            stream.connection = None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def fetch_rows(dsn: str, query: str, *, timeout_s: int, limit: int) -> list[dict[str, Any]]:
    if not query.strip():
        raise FetchError(_("The source has no query."))
    target = vet_dsn(dsn)
    refusal = read_statement_error(query, target.dialect)
    if refusal:
        raise FetchError(refusal)
    fetch = {"postgresql": fetch_postgresql, "sqlite": fetch_sqlite, "mysql": fetch_mysql}[target.dialect]
    return fetch(target, query, timeout_s=timeout_s, limit=limit)
