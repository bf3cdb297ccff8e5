import dj_database_url

from config.env import env_int, env_str

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    # No server configured: start (or join) the embedded PostgreSQL + pgvector under var/.
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
