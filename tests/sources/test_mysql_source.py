"""MySQL and MariaDB sources against the real MariaDB server on 127.0.0.1:3306 (root without a
password; part of this machine and of CI): a throwaway database and accounts with random names and
passwords, made as root for this module and dropped afterwards."""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

import pymysql
import pytest
from django.utils import translation
from pymysql.constants import CLIENT

from knowledge.models import Document
from sources.dsn_guard import RefusedDSN, dangerous_mysql_privileges, vet_dsn
from sources.errors import FetchError
from sources.fetch_sql import fetch_mysql, fetch_rows
from sources.models import AllowedHost, SourceKind, SyncStatus
from sources.services import source_create, source_sync, source_sync_run
from tests.conftest import login

HOST, PORT = "127.0.0.1", 3306
READ_ONLY = "The query tried to write; sources are read-only: Cannot execute statement in a READ ONLY transaction"
HELD = (
    "The database account holds global privileges (ON *.*) that read or write files on the database server or "
    "change its settings: {privileges}. Connect with an account that can only read what the source needs."
)
THROUGH_ROLE = (
    "The database account can use global privileges (ON *.*) through the role {role} that read or write files on "
    "the database server or change its settings: {privileges}. Connect with an account without that role."
)


class MariaDB:
    """As root: a throwaway database with three rows in `items`, and accounts and roles named
    `<kind>_<random>` (accounts with random passwords, for 127.0.0.1 only)."""

    def __init__(self):
        self.suffix = secrets.token_hex(4)
        self.database = f"src_{self.suffix}"
        self.accounts: dict[str, tuple[str, str]] = {}
        self.roles: list[str] = []

    def execute(self, sql: str, params=None) -> tuple:
        with pymysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True) as conn:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

    def _grant(self, grantee: str, grants: tuple[str, ...]) -> None:
        for grant in grants:
            self.execute(grant.format(grantee=grantee, db=f"`{self.database}`"))

    def role(self, kind: str, *grants: str) -> str:
        name = f"{kind}_{self.suffix}"
        self.execute(f"CREATE ROLE `{name}`")
        self.roles.append(name)
        self._grant(f"`{name}`", grants)
        return name

    def account(self, kind: str, *grants: str) -> None:
        user, password = f"{kind}_{self.suffix}", secrets.token_urlsafe(18)
        self.execute("CREATE USER %s@%s IDENTIFIED BY %s", [user, HOST, password])
        self.accounts[kind] = (user, password)
        self._grant(f"`{user}`@`{HOST}`", grants)

    def dsn(self, kind: str) -> str:
        user, password = self.accounts[kind]
        return f"mysql://{user}:{quote(password, safe='')}@{HOST}:{PORT}/{self.database}"

    def tables(self) -> list[str]:
        return [row[0] for row in self.execute(f"SHOW TABLES FROM `{self.database}`")]

    def count(self) -> int:
        return self.execute(f"SELECT COUNT(*) FROM `{self.database}`.items")[0][0]

    def server_has_file(self, path: str) -> bool:
        """Whether the file exists where the server writes (its own view of the file system)."""
        return self.execute("SELECT LOAD_FILE(%s) IS NOT NULL", [path])[0][0] == 1

    def drop(self) -> None:
        for user, _password in self.accounts.values():
            self.execute("DROP USER IF EXISTS %s@%s", [user, HOST])
        for role in self.roles:
            self.execute(f"DROP ROLE IF EXISTS `{role}`")
        self.execute(f"DROP DATABASE IF EXISTS `{self.database}`")


SELECT_ON_DB = "GRANT SELECT ON {db}.* TO {grantee}"


@pytest.fixture(scope="module")
def mariadb():
    server = MariaDB()
    try:
        server.execute(f"CREATE DATABASE `{server.database}`")
        server.execute(f"CREATE TABLE `{server.database}`.items (id INT PRIMARY KEY, title TEXT, body TEXT)")
        server.execute(
            f"INSERT INTO `{server.database}`.items VALUES (1, 'Loan policy', 'Loans need two signatures.'),"
            " (2, 'Card policy', 'Cards expire after 3 years.'), (3, 'Fees', 'Fees are listed monthly.')"
        )
        server.account("reader", SELECT_ON_DB)
        server.account("writer", "GRANT ALL PRIVILEGES ON {db}.* TO {grantee}")  # no global privilege
        server.account("file", "GRANT FILE ON *.* TO {grantee}", SELECT_ON_DB)
        server.account("super", "GRANT SUPER ON *.* TO {grantee}", SELECT_ON_DB)
        server.account("all", "GRANT ALL PRIVILEGES ON *.* TO {grantee}")
        file_role = server.role("file_role", "GRANT FILE ON *.* TO {grantee}")
        server.account("default_role", SELECT_ON_DB, f"GRANT `{file_role}` TO {{grantee}}",
                       f"SET DEFAULT ROLE `{file_role}` FOR {{grantee}}")
        outer_role = server.role("outer_role", f"GRANT `{file_role}` TO {{grantee}}")
        server.account("inactive_role", SELECT_ON_DB, f"GRANT `{outer_role}` TO {{grantee}}")
        yield server
    finally:
        server.drop()


@pytest.fixture
def allowlisted(db):
    """The admin put the MariaDB server on the SQL allowlist (a loopback address, so private allowed)."""
    return AllowedHost.objects.create(source_kind=SourceKind.SQL, host=HOST, port=PORT, allow_private_addresses=True)


def mysql_source(kb, manager, dsn: str, **overrides):
    fields = {
        "name": "Shop policies", "dsn": dsn, "query": "SELECT id, title, body FROM items ORDER BY id",
        "key_field": "id", "title_template": "{title}", "body_template": "{body}",
    }
    fields.update(overrides)
    return source_create(actor=manager, knowledge_base=kb, kind=SourceKind.SQL, **fields)


def test_a_read_only_account_copies_its_rows(kb, manager, mariadb, allowlisted):
    rows = fetch_rows(mariadb.dsn("reader"), "SELECT id, title FROM items ORDER BY id", timeout_s=5, limit=10)
    assert rows == [{"id": 1, "title": "Loan policy"}, {"id": 2, "title": "Card policy"}, {"id": 3, "title": "Fees"}]
    sync = source_sync(source_id=mysql_source(kb, manager, mariadb.dsn("reader")).pk)
    assert (sync.status, sync.created, sync.failed) == (SyncStatus.SUCCEEDED, 3, 0)
    assert Document.objects.get(knowledge_base=kb, title="Loan policy").latest_version.content == (
        "Loans need two signatures."
    )


@pytest.mark.parametrize("kind, role, privileges", [
    ("file", "", "FILE"),
    ("super", "", "SUPER"),
    ("all", "", "ALL PRIVILEGES"),
    ("default_role", "file_role", "FILE"),
    # Not active at login, but a stored procedure could SET ROLE it: its nested role's FILE counts.
    ("inactive_role", "outer_role", "FILE"),
])
def test_an_account_that_reaches_the_servers_files_or_settings_is_refused_before_its_query(
    kb, manager, mariadb, allowlisted, kind, role, privileges
):
    if role:
        expected = THROUGH_ROLE.format(role=f"{role}_{mariadb.suffix}", privileges=privileges)
    else:
        expected = HELD.format(privileges=privileges)
    outfile = f"/tmp/{mariadb.database}_{kind}_{secrets.token_hex(4)}.txt"
    query = f"SELECT id, title, body FROM items INTO OUTFILE '{outfile}'"
    source = mysql_source(kb, manager, mariadb.dsn(kind), query=query)
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.error, sync.created) == (SyncStatus.FAILED, expected, 0)
    assert not Document.objects.filter(knowledge_base=kb).exists()
    assert not mariadb.server_has_file(outfile)  # the query never ran
    with pytest.raises(RefusedDSN) as refused:
        fetch_rows(mariadb.dsn(kind), "SELECT LOAD_FILE('/etc/passwd') AS id", timeout_s=5, limit=10)
    assert str(refused.value) == expected


def test_the_refusal_is_translated(mariadb, allowlisted):
    with translation.override("zh-hans"), pytest.raises(RefusedDSN) as refused:
        fetch_rows(mariadb.dsn("file"), "SELECT LOAD_FILE('/etc/passwd') AS id", timeout_s=5, limit=10)
    assert str(refused.value) == (
        "该数据库账户拥有可读写数据库服务器上文件或更改其设置的全局权限（ON *.*）：FILE。请使用只能读取数据源所需内容的账户连接。"
    )


def test_a_file_account_aimed_through_the_api_copies_nothing(kb, manager, mariadb, allowlisted):
    client = login(manager)
    response = client.post("/api/sources/", {
        "knowledge_base": kb.pk, "kind": "sql", "name": "Host files", "dsn": mariadb.dsn("file"),
        "query": "SELECT 1 AS id, 'passwd' AS title, LOAD_FILE('/etc/passwd') AS body",
        "key_field": "id", "title_template": "{title}", "body_template": "{body}",
    }, content_type="application/json")
    assert response.status_code == 201, response.json()
    queued = client.post(f"/api/sources/{response.json()['id']}/sync/")
    assert queued.status_code == 202
    sync = source_sync_run(sync_id=queued.json()["id"])
    assert (sync.status, sync.error) == (SyncStatus.FAILED, HELD.format(privileges="FILE"))
    assert not Document.objects.filter(knowledge_base=kb).exists()


@pytest.mark.parametrize("query, message", [
    ("INSERT INTO items VALUES (9, 'Planted', 'x')", READ_ONLY),
    ("UPDATE items SET body = 'changed'", READ_ONLY),
    ("CREATE TABLE planted (id INT)", READ_ONLY),
    ("DROP TABLE items", READ_ONLY),
    ("SELECT id, title, body FROM items INTO OUTFILE '{outfile}'",
     "Database error: Access denied; you need (at least one of) the FILE privilege(s) for this operation"),
])
def test_an_account_that_may_write_its_tables_still_cannot_write(mariadb, allowlisted, query, message):
    # Past the statement check (fetch_rows refuses all but the SELECT first): the connection itself.
    outfile = f"/tmp/{mariadb.database}_{secrets.token_hex(4)}.txt"
    with pytest.raises(FetchError) as refused:
        fetch_mysql(vet_dsn(mariadb.dsn("writer")), query.format(outfile=outfile), timeout_s=5, limit=10)
    assert str(refused.value) == message
    assert mariadb.tables() == ["items"] and mariadb.count() == 3
    first = mariadb.execute(f"SELECT body FROM `{mariadb.database}`.items WHERE id = 1")[0][0]
    assert first == "Loans need two signatures."
    assert not mariadb.server_has_file(outfile)


@pytest.mark.parametrize("query, word", [
    ("KILL {victim}", "kill"),
    ("# a comment\nKILL {victim}", "kill"),
    ("/* SELECT */ KILL {victim}", "kill"),
    ("/*!KILL {victim}*/", "/*!"),  # MySQL and MariaDB run the text of /*! comments
    ("--x\nKILL {victim}", "-"),  # "--" without a space is no comment there
    ("DO SLEEP(3)", "do"),
    ("SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(3)", "set"),
    ("HANDLER items OPEN", "handler"),
])
def test_a_statement_that_is_not_a_read_never_reaches_the_server(mariadb, allowlisted, query, word):
    # The read-only transaction lets KILL through: the account could end its own other connections.
    user, password = mariadb.accounts["reader"]
    victim = pymysql.connect(host=HOST, port=PORT, user=user, password=password, database=mariadb.database)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError) as refused:
            fetch_rows(mariadb.dsn("reader"), query.format(victim=victim.thread_id()), timeout_s=5, limit=10)
        assert str(refused.value) == (
            f"A source query must be a SELECT (or WITH, VALUES, TABLE) statement; this one starts with “{word}”."
        )
        assert time.monotonic() - started < 2
        victim.ping(reconnect=False)
        with victim.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM items")
            assert cursor.fetchone() == (3,)
    finally:
        victim.close()


def test_a_query_is_one_statement(mariadb, allowlisted, monkeypatch):
    opened = []
    connect = pymysql.connect

    def recording_connect(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    with monkeypatch.context() as patched, pytest.raises(FetchError) as refused:
        patched.setattr(pymysql, "connect", recording_connect)
        fetch_rows(mariadb.dsn("writer"), "SELECT 1 AS id; DROP TABLE items", timeout_s=5, limit=10)
    assert str(refused.value).startswith("Database error: You have an error in your SQL syntax")
    assert mariadb.tables() == ["items"]
    (conn,) = opened
    assert not conn.client_flag & CLIENT.MULTI_STATEMENTS
    assert not conn.client_flag & CLIENT.LOCAL_FILES  # the server cannot ask for this machine's files


def test_the_time_limit_applies_on_mariadb(kb, manager, mariadb, allowlisted):
    source = mysql_source(kb, manager, mariadb.dsn("reader"), query="SELECT SLEEP(5) AS id, 't' AS title, 'b' AS body",
                          timeout_seconds=1)
    sync = source_sync(source_id=source.pk)
    assert (sync.status, sync.error) == (SyncStatus.FAILED, "The query ran longer than the time limit (1 s).")
    assert sync.duration.total_seconds() < 3


def test_a_query_that_lifts_the_servers_limit_still_ends_at_the_time_limit(mariadb, allowlisted):
    started = time.monotonic()
    with pytest.raises(FetchError) as refused:
        # Past the statement check, which refuses a SET first: the connection's own read timeout.
        fetch_mysql(vet_dsn(mariadb.dsn("reader")), "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(8) AS id",
                    timeout_s=1, limit=10)
    assert str(refused.value) == "The query ran longer than the time limit (1 s)."
    assert time.monotonic() - started < 6
    # And the server stops it too: nothing of that account is still sleeping there.
    user = mariadb.accounts["reader"][0]
    deadline = time.monotonic() + 3
    while mariadb.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s AND INFO LIKE %s",
                          [user, "%SLEEP(8)%"])[0][0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mariadb.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s AND INFO LIKE %s",
                               [user, "%SLEEP(8)%"])[0][0]


def test_the_row_limit_fails_the_sync_without_writing(kb, manager, mariadb, allowlisted):
    sync = source_sync(source_id=mysql_source(kb, manager, mariadb.dsn("reader"), max_records=2).pk)
    assert sync.status == SyncStatus.FAILED
    assert sync.error == "The query returned more than 2 rows; raise the record limit or narrow the query."
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_mysql_8_grant_lines_are_read_too():
    """MySQL 8 lists ALL as every static privilege, and dynamic privileges without spaces."""
    admin = (
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, REFERENCES, INDEX, "
        "ALTER, SHOW DATABASES, SUPER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
        "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, "
        "CREATE TABLESPACE, CREATE ROLE, DROP ROLE ON *.* TO `root`@`localhost` WITH GRANT OPTION"
    )
    assert dangerous_mysql_privileges([admin]) == ["FILE", "SUPER"]
    dynamic = "GRANT APPLICATION_PASSWORD_ADMIN,BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `ops`@`%`"
    assert dangerous_mysql_privileges([dynamic]) == ["SYSTEM_VARIABLES_ADMIN", "BACKUP_ADMIN"]
    assert dangerous_mysql_privileges(["GRANT ALL PRIVILEGES ON *.* TO `dba`@`%`"]) == ["ALL PRIVILEGES"]
    assert dangerous_mysql_privileges([
        "GRANT USAGE ON *.* TO `reader`@`%`",
        "GRANT PROCESS, SHUTDOWN, RELOAD ON *.* TO `reader`@`%`",
        "GRANT ALL PRIVILEGES ON `shop`.* TO `reader`@`%`",
        "GRANT SELECT (`id`, `title`) ON `shop`.`items` TO `reader`@`%`",
        "GRANT `FILE ON *.* TO x`@`%` TO `reader`@`%`",
        "GRANT PROXY ON ``@`` TO `reader`@`%`",
    ]) == []


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_huge_result_is_refused_after_limit_rows_without_reading_it_all(mariadb, allowlisted):
    """Five million rows of MariaDB's sequence engine (about 500 MB as Python rows): the sync asks for
    ten, so no more than eleven may reach this process."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as refused:
            fetch_rows(mariadb.dsn("reader"), "SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_5000000",
                       timeout_s=60, limit=10)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value) == "The query returned more than 10 rows; raise the record limit or narrow the query."
    assert peak < 20 * 1024 * 1024, peak
    # Within the limit, the rows come back whole.
    rows = fetch_rows(mariadb.dsn("reader"), "SELECT seq FROM seq_1_to_10", timeout_s=10, limit=10)
    assert [row["seq"] for row in rows] == list(range(1, 11))
