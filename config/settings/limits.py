"""API keys and rate limits. Counters live in the database (accounts.RateLimitCounter), so every
process shares them without Redis. 0 means unlimited."""

from config.env import env_int

# Chat page and /v1: requests per user per minute, and tokens (prompt + completion) per department
# per day. A department can override both (People & departments → Usage and limits).
CHAT_USER_REQUESTS_PER_MINUTE = env_int("CHAT_USER_REQUESTS_PER_MINUTE", 20)
CHAT_DEPARTMENT_DAILY_TOKENS = env_int("CHAT_DEPARTMENT_DAILY_TOKENS", 1_000_000)
# A user in no department (a company admin without one, someone whose memberships were removed)
# has no department to charge: this many tokens a day, each.
CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS = env_int("CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS", 200_000)

# Login form and POST /api/auth/token/: failed attempts per client IP and per username in a window.
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 20)
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 300)

# Active API keys one user may hold at once.
API_KEYS_PER_USER = env_int("API_KEYS_PER_USER", 20)
# An edit lock not refreshed by the open editor (heartbeat every EDIT_LOCK_HEARTBEAT_SECONDS) for
# this long has expired: it stops blocking saves and another editor may take it over.
EDIT_LOCK_TTL_SECONDS = env_int("EDIT_LOCK_TTL_SECONDS", 300)
EDIT_LOCK_HEARTBEAT_SECONDS = env_int("EDIT_LOCK_HEARTBEAT_SECONDS", 60)
