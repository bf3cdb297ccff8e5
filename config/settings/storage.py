from config.env import BASE_DIR, VAR_DIR, env_int, env_str

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
# Uploads larger than this are refused (ingestion reads this too).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# SQL/HTTP sources: credentials are encrypted with a key derived from this (default: SECRET_KEY).
SOURCES_ENCRYPTION_KEY = env_str("SOURCES_ENCRYPTION_KEY")
SOURCES_HTTP_MAX_BYTES = env_int("SOURCES_HTTP_MAX_BYTES", 10 * 1024 * 1024)
