"""Where a SQL source may connect: never to the product's own database or files.

A knowledge manager types the DSN, so it is attacker input. Before any connection (when the source
is saved, and again at every sync):

- PostgreSQL and MySQL DSNs name one TCP host; Unix sockets (`host=/path`, `%2F` paths, `@`
  abstract sockets, an empty host), several hosts, `service=`, `hostaddr=` and file parameters
  (`sslkey`, `passfile`, ...) are refused;
- host:port must be on the admin's SQL allowlist (`AllowedHost` with kind "sql"); a host that
  resolves to a private or loopback address also needs the entry's "allow private addresses";
- the product's own server is refused whatever the allowlist says: the same port on an address of
  the product's server (its host's addresses; for a server on a socket or on a loopback address,
  every address of this machine: localhost, 127.0.0.1, ::1, its interfaces), and the same database
  name with the same user on the same host as `DATABASE_URL`;
- the connection then goes to the address that was checked (`hostaddr`), built from the vetted
  parts only, with ~/.pgpass turned off.

After connecting (sources.fetch_sql): a role that is a superuser, or a member (directly or through
other roles) of a superuser role or of pg_read_server_files, pg_write_server_files or
pg_execute_server_program, is refused; so is a server whose system identifier is the product's.
On MySQL and MariaDB an account that can use FILE, SUPER, ALL PRIVILEGES (or MySQL 8's
SYSTEM_VARIABLES_ADMIN, BACKUP_ADMIN) on *.*, directly, through PUBLIC or through any role granted
to it, is refused (check_mysql_session).

SQLite files are read only from under the admin-configured SOURCES_SQLITE_DIR (the resolved path:
no `..` or symlink escape), never from under var/.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import FetchError
from .fetch_http import _is_private
from .models import SourceKind, allowlist_entry, normalize_host

NO_PASSFILE = "/nonexistent/.pgpass"
POSTGRES_KEYS = {"host", "port", "dbname", "user", "password", "sslmode", "application_name", "connect_timeout",
                 "channel_binding", "gssencmode"}
DANGEROUS_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")


class RefusedDSN(FetchError):
    """The DSN names a place sources may not reach; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a vetted DSN connects: the host as written, the address that was checked, the port."""

    dialect: str
    host: str
    address: str
    port: int
    params: dict[str, str]
    sqlite_path: str = ""

    def postgresql_conninfo(self, **extra: Any) -> str:
        from psycopg.conninfo import make_conninfo

        params = {**self.params, "host": self.host, "hostaddr": self.address, "port": str(self.port),
                  "passfile": NO_PASSFILE, **extra}
        params = {k: v for k, v in params.items() if v not in (None, "")}
        # An explicit (empty) password: libpq would otherwise send the product's own PGPASSWORD.
        params.setdefault("password", "")
        return make_conninfo(**params)


def dialect(dsn: str) -> str:
    scheme = dsn.split("://", 1)[0].lower() if "://" in dsn else ""
    if scheme.startswith(("postgres", "postgresql")) or not scheme:
        return "postgresql"  # also libpq key=value strings
    if scheme.startswith("mysql"):
        return "mysql"
    if scheme.startswith("sqlite"):
        return "sqlite"
    raise FetchError(_("Unsupported database type “%(scheme)s”.") % {"scheme": scheme})


def _socket_refusal() -> RefusedDSN:
    return RefusedDSN(
        _("Connections through a Unix socket are not allowed; give the database server's host name and port.")
    )


# --- the product's own server ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProductDatabase:
    host: str  # "" or a socket directory when the server is reached through a socket
    port: int
    name: str
    user: str

    @property
    def on_socket(self) -> bool:
        return not self.host or self.host.startswith(("/", "@"))


def product_database() -> ProductDatabase:
    db = settings.DATABASES["default"]
    options = db.get("OPTIONS") or {}
    host = str(db.get("HOST") or options.get("host") or "")
    port = int(db.get("PORT") or options.get("port") or 5432)
    name = str(db.get("NAME") or "")
    return ProductDatabase(host=host, port=port, name=name, user=str(db.get("USER") or ""))


def _product_names() -> set[str]:
    """Every database name the product uses on its server (the test runner's included)."""
    from django.db import connection

    names = {product_database().name, str(settings.DATABASES["default"].get("NAME") or "")}
    if connection.settings_dict.get("NAME"):
        names.add(str(connection.settings_dict["NAME"]))
    return {n for n in names if n}


@lru_cache(maxsize=1)
def _this_machine() -> frozenset[str]:
    addresses: set[str] = {"127.0.0.1", "::1", "0.0.0.0", "::"}
    try:
        import psutil

        for entries in psutil.net_if_addrs().values():
            for entry in entries:
                if entry.family in (socket.AF_INET, socket.AF_INET6):
                    addresses.add(entry.address.split("%", 1)[0])
    except Exception:  # psutil missing or unreadable: the names below still count
        pass
    for name in {socket.gethostname(), socket.getfqdn(), "localhost"}:
        addresses |= set(_resolve(name, 0, quiet=True))
    return frozenset(addresses)


def _resolve(host: str, port: int, *, quiet: bool = False) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        if quiet:
            return []
        raise FetchError(_("The host “%(host)s” cannot be resolved: %(error)s") % {"host": host, "error": exc}) from exc
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


def _is_local(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback or parsed.is_unspecified or str(parsed) in _this_machine()


def _product_addresses(product: ProductDatabase) -> set[str]:
    if product.on_socket:
        return set()
    return set(_resolve(product.host, product.port, quiet=True))


def _reaches_product(host: str, addresses: list[str], port: int, params: dict[str, str]) -> bool:
    product = product_database()
    if port != product.port:
        same_server = False
    elif product.on_socket:
        # A socket-only server has no TCP address; the same port on this machine may be a proxy to it.
        same_server = any(_is_local(a) for a in addresses)
    else:
        product_addresses = _product_addresses(product)
        local_product = any(_is_local(a) for a in product_addresses)
        same_server = bool(set(addresses) & product_addresses) or (local_product and any(_is_local(a) for a in addresses))
    same_name = (
        params.get("dbname", params.get("user", "")) in _product_names()
        and normalize_host(host) == normalize_host(product.host or "localhost")
    )
    return same_server or same_name


def own_database_refusal() -> RefusedDSN:
    return RefusedDSN(_("This connection reaches the product's own database, which sources may never read."))


# --- vetting --------------------------------------------------------------------------------------


def _vet_network(kind: str, host: str, port: int, params: dict[str, str]) -> Target:
    if not host:
        raise _socket_refusal()
    if host.startswith(("/", "@")) or "/" in host:
        raise _socket_refusal()
    if "," in host:
        raise RefusedDSN(_("A source connects to one host; lists of hosts are not allowed."))
    host = normalize_host(host)
    entry = allowlist_entry(SourceKind.SQL, host, port)
    not_allowed = RefusedDSN(
        _("The database server “%(host)s:%(port)s” is not on the allowlist of SQL sources; a company admin can add it.")
        % {"host": host, "port": port}
    )
    try:
        addresses = _resolve(host, port)
    except FetchError:
        if entry is None:
            raise not_allowed from None
        raise
    if not addresses:
        raise FetchError(_("The host “%(host)s” cannot be resolved.") % {"host": host})
    if _reaches_product(host, addresses, port, params):
        raise own_database_refusal()
    if entry is None:
        raise not_allowed
    private = [a for a in addresses if _is_private(ipaddress.ip_address(a))]
    if private and not entry.allow_private_addresses:
        raise RefusedDSN(
            _(
                "The host “%(host)s” resolves to a private, loopback or link-local address (%(address)s); "
                "its allowlist entry does not allow that."
            )
            % {"host": host, "address": private[0]}
        )
    return Target(dialect=kind, host=host, address=addresses[0], port=port, params=params)


def _vet_postgresql(dsn: str) -> Target:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except ProgrammingError as exc:
        raise RefusedDSN(_("The connection string cannot be read: %(error)s") % {"error": str(exc).splitlines()[0]}) from exc
    unknown = sorted(set(params) - POSTGRES_KEYS)
    if unknown:
        raise RefusedDSN(
            _("These connection parameters are not allowed in a source: %(names)s.") % {"names": ", ".join(unknown)}
        )
    if any("=" in params.get(k, "") or "://" in params.get(k, "") for k in ("dbname", "user")):
        raise RefusedDSN(_("The database and user names cannot hold a connection string."))
    host = params.pop("host", "")
    if "," in host:
        raise RefusedDSN(_("A source connects to one host; lists of hosts are not allowed."))
    raw_port = params.pop("port", "") or "5432"
    if "," in raw_port or not (raw_port.isascii() and raw_port.isdigit()) or not 0 < int(raw_port) < 65536:
        raise RefusedDSN(_("The port must be one number between 1 and 65535."))
    return _vet_network("postgresql", host, int(raw_port), params)


def _split(dsn: str):
    """urlsplit, with a connection string it cannot read (an unclosed "[" of an IPv6 host) refused."""
    try:
        return urlsplit(dsn)
    except ValueError as exc:
        raise RefusedDSN(_("The connection string cannot be read: %(error)s") % {"error": exc}) from None


def _vet_mysql(dsn: str) -> Target:
    parts = _split(dsn)
    if parts.query:
        raise RefusedDSN(_("Connection parameters after “?” are not allowed in a MySQL source."))
    try:
        port = parts.port or 3306
    except ValueError:
        raise RefusedDSN(_("The port must be one number between 1 and 65535.")) from None
    host = unquote(parts.hostname or "")
    params = {"user": unquote(parts.username or ""), "password": unquote(parts.password or ""),
              "dbname": unquote(parts.path.lstrip("/"))}
    return _vet_network("mysql", host, port, params)


def sqlite_directory() -> Path | None:
    configured = getattr(settings, "SOURCES_SQLITE_DIR", "")
    return Path(configured).resolve() if configured else None


def _vet_sqlite(dsn: str) -> Target:
    directory = sqlite_directory()
    if directory is None:
        raise RefusedDSN(_("SQLite sources are turned off: a server administrator has to set SOURCES_SQLITE_DIR."))
    parts = _split(dsn)
    if parts.query or parts.fragment or parts.netloc:
        raise RefusedDSN(_("Write a SQLite source as sqlite:////absolute/path/file.db, without parameters."))
    raw = unquote(parts.path)
    if dsn.lower().startswith("sqlite:////"):
        raw = "/" + raw.lstrip("/")
    if not raw.startswith("/"):
        raw = str(directory / raw.lstrip("/"))
    resolved = Path(os.path.realpath(raw))
    from config.env import VAR_DIR

    inside = resolved.is_relative_to(directory) and resolved != directory
    if not inside or resolved.is_relative_to(Path(os.path.realpath(VAR_DIR))):
        raise RefusedDSN(
            _("SQLite files can only be read from under %(directory)s.") % {"directory": directory}
        )
    return Target(dialect="sqlite", host="", address="", port=0, params={}, sqlite_path=str(resolved))


def vet_dsn(dsn: str) -> Target:
    """Check a DSN before any connection; raise RefusedDSN (or FetchError) with the reason."""
    dsn = dsn.strip()
    if not dsn:
        raise RefusedDSN(_("A connection string is required."))
    kind = dialect(dsn)
    return {"postgresql": _vet_postgresql, "mysql": _vet_mysql, "sqlite": _vet_sqlite}[kind](dsn)


# --- after connecting -----------------------------------------------------------------------------

ROLE_CHECK = """
SELECT r.rolsuper OR EXISTS (
           SELECT 1 FROM pg_roles s WHERE s.rolsuper AND pg_has_role(r.oid, s.oid, 'MEMBER')),
       ARRAY(SELECT p.rolname::text FROM pg_roles p
             WHERE p.rolname = ANY(%s) AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY 1)
FROM pg_roles r WHERE r.rolname = current_user
"""

# Functions that reach past the source's read-only session. The server's files: superusers and the
# file roles above only, unless a DBA granted one to a role by name. dblink's connecting functions
# (the extension installs them with EXECUTE for PUBLIC): a session of their own from the database
# server, not the source's read-only transaction (it may write), to wherever that server reaches.
FILE_FUNCTIONS = ("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export")
DBLINK_FUNCTIONS = ("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_open", "dblink_send_query")
# Those of them (the file ones in pg_catalog, the dblink ones of that extension) the role may run,
# itself or through any role it is a member of (with NOINHERIT too, as for the file roles: a role it
# may take is counted as held).
FUNCTION_CHECK = """
SELECT ARRAY(
    SELECT DISTINCT p.proname::text FROM pg_proc p
    WHERE p.proname = ANY(%s)
      AND (p.pronamespace = 'pg_catalog'::regnamespace OR EXISTS (
           SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_extension'::regclass
             AND d.deptype = 'e' AND e.extname = 'dblink'))
      AND EXISTS (
           SELECT 1 FROM pg_roles r
           WHERE pg_has_role(current_user, r.oid, 'MEMBER') AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
             AND has_schema_privilege(r.oid, p.pronamespace, 'USAGE'))
    ORDER BY 1)
"""


def check_postgresql_session(conn: Any) -> None:
    """Refuse a role that can read or write the server's files (through a file role or a file
    function granted by name) or run programs on it, or open connections of its own from the server
    (dblink), and the product's own server reached through any path the address checks could not see."""
    with conn.cursor() as cursor:
        cursor.execute(ROLE_CHECK, [list(DANGEROUS_ROLES)])
        row = cursor.fetchone()
        superuser, memberships = (bool(row[0]), list(row[1])) if row else (False, [])
        if superuser:
            raise RefusedDSN(
                _("The database role is a superuser (or may become one); connect with a role that can only read what the source needs.")
            )
        if memberships:
            raise RefusedDSN(
                _("The database role is a member of %(roles)s, which can read or write the server's files or run programs; connect with a role without it.")
                % {"roles": ", ".join(memberships)}
            )
        cursor.execute(FUNCTION_CHECK, [[*FILE_FUNCTIONS, *DBLINK_FUNCTIONS]])
        runnable = list(cursor.fetchone()[0])
        files = [name for name in runnable if name in FILE_FUNCTIONS]
        dblink = [name for name in runnable if name in DBLINK_FUNCTIONS]
        if files:
            raise RefusedDSN(
                _("The database role may run %(functions)s, which read or write the database server's files; revoke EXECUTE on them or connect with another role.")
                % {"functions": ", ".join(files)}
            )
        if dblink:
            raise RefusedDSN(
                _("The database role may run dblink's %(functions)s, which open connections of their own from the database server, outside the read-only transaction; revoke EXECUTE on them or connect with another role.")
                % {"functions": ", ".join(dblink)}
            )
        identifier = _system_identifier(cursor)
    if identifier and identifier == product_system_identifier():
        raise own_database_refusal()


def _system_identifier(cursor: Any) -> str:
    try:
        cursor.execute("SELECT system_identifier::text FROM pg_control_system()")
        row = cursor.fetchone()
        return row[0] if row else ""
    except Exception:  # not granted on that server: the address checks stand alone
        cursor.connection.rollback()
        return ""


@lru_cache(maxsize=1)
def product_system_identifier() -> str:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT system_identifier::text FROM pg_control_system()")
        return cursor.fetchone()[0]


# --- MySQL and MariaDB, after connecting ------------------------------------------------------------

DANGEROUS_MYSQL_PRIVILEGES = ("ALL PRIVILEGES", "FILE", "SUPER", "SYSTEM_VARIABLES_ADMIN", "BACKUP_ADMIN")
GLOBAL_GRANT = re.compile(r"GRANT (?P<privileges>.+?) ON \*\.\* TO ", re.IGNORECASE)


def dangerous_mysql_privileges(grants: Iterable[str]) -> list[str]:
    """The dangerous privileges that `SHOW GRANTS` lines give on *.*, in MariaDB's and MySQL's
    formats (`GRANT FILE, SUPER ON *.* TO …`, `GRANT ALL PRIVILEGES ON *.* TO …`, MySQL 8's expanded
    static list and its dynamic `GRANT SYSTEM_VARIABLES_ADMIN,BINLOG_ADMIN ON *.* TO …`)."""
    held: set[str] = set()
    for line in grants:
        match = GLOBAL_GRANT.match(line)
        if match:
            for privilege in match["privileges"].split(","):
                name = " ".join(privilege.split()).upper()
                held.add("ALL PRIVILEGES" if name == "ALL" else name)
    return [p for p in DANGEROUS_MYSQL_PRIVILEGES if p in held]


def is_mariadb(conn: Any) -> bool:
    return "mariadb" in conn.get_server_info().lower()


def mysql_error_text(exc: Exception) -> str:
    """The server's message without the driver's `(code, '…')` wrapping."""
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) == 2 else str(exc)


def check_mysql_session(conn: Any) -> None:
    """Refuse a MySQL or MariaDB account that reaches beyond the server's tables: onto the files of
    the database host (which may be the product's own) or into the server's settings.

    The source's query is one statement (the driver does not enable multi-statements) in a read-only
    transaction, and whoever typed the DSN knows the account's password, so what the account may do
    with the server's tables is its owner's business. What is refused, held on *.*:

    - FILE: `LOAD_FILE('/…')` reads and `SELECT … INTO OUTFILE` writes any file the server process
      can; the read-only transaction stops neither;
    - SUPER, and MySQL 8's SYSTEM_VARIABLES_ADMIN: one `SET GLOBAL general_log_file = '/…'` (not a
      table write, so allowed in a read-only transaction) makes the server's log a file writer;
    - MySQL 8's BACKUP_ADMIN: `CLONE LOCAL DATA DIRECTORY = '/…'` copies every table to a path;
    - ALL PRIVILEGES, which holds them.

    Not refused: PROCESS (other sessions' statements), SHUTDOWN, RELOAD, REPLICATION …, CREATE
    USER and MariaDB's privileges split out of SUPER. None reads or writes a file, and what they
    show or stop stays inside the server whose account this is.

    Roles count whether active or not: a stored procedure may `SET ROLE` before it reads a file, and
    `CALL` is one statement. MariaDB: the account's own grants (with PUBLIC's) with no role set,
    then each role granted to it, set in turn (SHOW GRANTS then lists the grants of the roles it
    holds too); the role that was active is set again. MySQL 8: `SET ROLE ALL`, then
    `SHOW GRANTS … USING` those roles. Privileges that cannot be read are a refusal too.
    """
    import pymysql

    try:
        with conn.cursor() as cursor:
            if is_mariadb(conn):
                _check_mariadb_grants(cursor)
            else:
                _check_mysql_grants(cursor, conn.get_server_info())
    except pymysql.Error as exc:
        raise RefusedDSN(
            _("The database account's privileges cannot be read (%(error)s); a source connects only with an account whose privileges can be checked.")
            % {"error": mysql_error_text(exc)}
        ) from exc


def _grants(cursor: Any, statement: str = "SHOW GRANTS") -> list[str]:
    cursor.execute(statement)
    return [row[0] for row in cursor.fetchall()]


def _refuse_mysql(held: list[str], role: str = "") -> None:
    if not held:
        return
    if role:
        raise RefusedDSN(
            _("The database account can use global privileges (ON *.*) through the role %(role)s that read or write files on the database server or change its settings: %(privileges)s. Connect with an account without that role.")
            % {"role": role, "privileges": ", ".join(held)}
        )
    raise RefusedDSN(
        _("The database account holds global privileges (ON *.*) that read or write files on the database server or change its settings: %(privileges)s. Connect with an account that can only read what the source needs.")
        % {"privileges": ", ".join(held)}
    )


def _check_mariadb_grants(cursor: Any) -> None:
    cursor.execute("SELECT CURRENT_ROLE()")
    active = cursor.fetchone()[0]
    cursor.execute("SET ROLE NONE")
    _refuse_mysql(dangerous_mysql_privileges(_grants(cursor)))
    cursor.execute("SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES WHERE GRANTEE = CURRENT_USER()")
    for (role,) in cursor.fetchall():
        cursor.execute("SET ROLE %s", [role])
        _refuse_mysql(dangerous_mysql_privileges(_grants(cursor)), role=role)
    if active:
        cursor.execute("SET ROLE %s", [active])
    else:
        cursor.execute("SET ROLE NONE")


def _check_mysql_grants(cursor: Any, version: str) -> None:
    _refuse_mysql(dangerous_mysql_privileges(_grants(cursor)))
    major = re.match(r"\d+", version)
    if not major or int(major.group()) < 8:
        return  # no roles before MySQL 8
    cursor.execute("SELECT CURRENT_ROLE()")
    active = cursor.fetchone()[0]
    cursor.execute("SET ROLE ALL")
    cursor.execute("SELECT CURRENT_ROLE()")
    roles = cursor.fetchone()[0]
    if roles and roles != "NONE":
        # CURRENT_ROLE() is the server's own quoted list (`r`@`%`,…), as USING and SET ROLE take it.
        grants = _grants(cursor, f"SHOW GRANTS FOR CURRENT_USER() USING {roles}")
        _refuse_mysql(dangerous_mysql_privileges(grants), role=roles)
    cursor.execute(f"SET ROLE {active or 'NONE'}")
