import sys
from pathlib import Path

import dj_database_url

from config.env import env_int, env_str

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    # No server configured: start (or join) the embedded PostgreSQL + pgvector under var/
    # (password authentication, socket in a 0700 directory: config/pgserver.py).
    from config.pgserver import embedded_database_url

    DATABASE_URL = embedded_database_url()

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
if name := env_str("DATABASE_NAME"):
    # Lets a worker process join a test database created by the test runner.
    DATABASES["default"]["NAME"] = name
# Parallel test runs on one server need distinct test database names.
if test_name := env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": test_name}


WEB_SERVERS = {"gunicorn", "uwsgi", "daphne", "uvicorn", "hypercorn"}


def database_process_kind(argv: list[str] | None = None) -> str:
    """"web" for the web server (runserver; any WSGI/ASGI server through config.wsgi/asgi, which
    set DATABASE_PROCESS_KIND) and the test suite, which exercises the request path; "worker" for
    Celery; "command" for management commands and scripts (migrate, benches)."""
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]).as_posix() if argv else ""
    name = Path(program).name
    if "celery" in program:  # `celery ...` and `python -m celery ...`
        return "worker"
    if name in ("manage.py", "django-admin"):
        return "web" if len(argv) > 1 and argv[1] == "runserver" else "command"
    if name in WEB_SERVERS or "pytest" in program:
        return "web"
    return "command"


def statement_limits(kind: str) -> tuple[int, int]:
    """(statement_timeout, lock_timeout) in milliseconds for a process kind; 0 is no limit.
    Requests fail cleanly (503, core.middleware) instead of hanging on a held lock; background
    work and management commands (migrations, evaluate_retrieval) may run long."""
    if kind == "web":
        return env_int("DB_STATEMENT_TIMEOUT_MS", 30_000), env_int("DB_LOCK_TIMEOUT_MS", 5_000)
    return env_int("DB_WORKER_STATEMENT_TIMEOUT_MS", 0), env_int("DB_WORKER_LOCK_TIMEOUT_MS", 0)


def statement_limit_options(kind: str) -> str:
    statement_ms, lock_ms = statement_limits(kind)
    return f"-c statement_timeout={int(statement_ms)} -c lock_timeout={int(lock_ms)}"


DATABASE_PROCESS_KIND = env_str("DATABASE_PROCESS_KIND") or database_process_kind()
_options = DATABASES["default"].setdefault("OPTIONS", {})
# libpq startup options: set once per connection, before any statement runs.
_options["options"] = " ".join(filter(None, [_options.get("options", ""), statement_limit_options(DATABASE_PROCESS_KIND)]))
