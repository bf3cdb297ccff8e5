from config.env import BASE_DIR, VAR_DIR, env_int, env_list, env_str

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
# Uploads larger than this are refused (ingestion reads this too).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Small requests in memory; otherwise a temporary file that never holds more than UPLOAD_MAX_BYTES.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "core.uploads.LimitedTemporaryFileUploadHandler",
]
# SQL/HTTP source credentials: Fernet keys of their own, first encrypts, all decrypt (sources.crypto).
# Unset: DEBUG generates a development key file (outside var/pgdata); otherwise credentials cannot be saved.
SOURCE_CREDENTIALS_KEYS = env_list("SOURCE_CREDENTIALS_KEYS", [])
SOURCE_CREDENTIALS_KEY_FILE = env_str("SOURCE_CREDENTIALS_KEY_FILE", str(VAR_DIR / "source_credentials.key"))
# Read only by the migration that re-encrypts credentials stored by older versions.
SOURCES_ENCRYPTION_KEY = env_str("SOURCES_ENCRYPTION_KEY")
# SQLite sources read files only from under this directory; unset turns SQLite sources off.
SOURCES_SQLITE_DIR = env_str("SOURCES_SQLITE_DIR")
SOURCES_HTTP_MAX_BYTES = env_int("SOURCES_HTTP_MAX_BYTES", 10 * 1024 * 1024)
