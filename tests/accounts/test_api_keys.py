"""Per-user API keys (hashed, shown once, revocable) and rate-limited sign-in."""

import hashlib
import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, RateLimitCounter
from accounts.services import api_key_create
from core.models import AuditEntry


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_token_endpoint_creates_a_hashed_key_that_works_as_bearer_and_token(people, password):
    response = APIClient().post("/api/auth/token/", {"username": "credit_employee", "password": password, "name": "cli"})
    assert response.status_code == 200, response.content
    body = response.json()
    key = body["token"]
    assert key.startswith("dsk-") and body["prefix"] == key[:12] and body["name"] == "cli"
    row = ApiKey.objects.get(pk=body["id"])
    # Only a digest is stored: the plain key appears in no column.
    assert row.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(list(ApiKey.objects.values_list()))
    for scheme in ("Bearer", "Token", "bearer"):
        me = APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert me.status_code == 200 and me.json()["username"] == "credit_employee", scheme
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}x").status_code == 401
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION="Bearer").status_code == 401
    assert AuditEntry.objects.filter(action="create", object_id=str(row.pk)).exists()
    # Each call makes a new key; the first keeps working.
    second = APIClient().post("/api/auth/token/", {"username": "credit_employee", "password": password}).json()
    assert second["token"] != key and bearer(key).get("/api/me/").status_code == 200


def test_a_revoked_key_is_refused_at_once(people):
    user = people["credit_employee"]
    api_key, key = api_key_create(user=user, name="x")
    client = bearer(key)
    assert client.get("/api/auth/keys/").json()["results"][0]["prefix"] == key[:12]
    assert client.delete(f"/api/auth/keys/{api_key.pk}/").status_code == 204
    response = bearer(key).get("/api/me/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert AuditEntry.objects.filter(action="permission_change", details__event="api_key_revoked").count() == 1


def test_keys_of_others_are_invisible_and_cannot_be_revoked(people, client_for):
    theirs, their_key = api_key_create(user=people["hr_employee"])
    mine, my_key = api_key_create(user=people["credit_employee"])
    client = bearer(my_key)
    assert [k["id"] for k in client.get("/api/auth/keys/").json()["results"]] == [mine.pk]
    assert client.delete(f"/api/auth/keys/{theirs.pk}/").status_code == 404
    assert client_for(people["credit_employee"]).post(f"/accounts/profile/keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and bearer(their_key).get("/api/me/").status_code == 200


def test_profile_page_creates_lists_and_revokes_keys(people, client_for):
    client = client_for(people["credit_employee"])
    page = client.post("/accounts/profile/keys/", {"name": "reporting"}).content.decode()
    key = page.split('data-testid="api-key">')[1].split("<")[0]
    assert bearer(key).get("/api/me/").status_code == 200
    api_key = ApiKey.objects.get(user=people["credit_employee"])
    listing = client.get("/accounts/profile/").content.decode()
    assert "reporting" in listing and api_key.prefix in listing and key not in listing
    response = client.post(f"/accounts/profile/keys/{api_key.pk}/revoke/", follow=True)
    assert "was revoked" in response.content.decode()
    assert bearer(key).get("/api/me/").status_code == 401
    client.cookies.load({"django_language": "zh-hans"})
    assert "撤销" in client.get("/accounts/profile/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


def test_active_keys_per_user_are_capped(people, settings):
    settings.API_KEYS_PER_USER = 2
    user = people["credit_employee"]
    api_key_create(user=user)
    _, key = api_key_create(user=user)
    response = bearer(key).post("/api/auth/keys/", {"name": "third"})
    assert response.status_code == 400 and "Revoke one first" in str(response.json())
    assert ApiKey.objects.filter(user=user).count() == 2


def test_existing_drf_tokens_are_migrated_to_hashed_keys(people):
    """Migration 0003 turns each plain-text DRF token into a key holding only its digest."""
    user = people["credit_employee"]
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id bigint, created timestamptz)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, now() - interval '3 days')", [old_key, user.pk])
    migration = importlib.import_module("accounts.migrations.0003_retire_drf_tokens")
    with connection.schema_editor() as editor:
        migration.forwards(django_apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    migrated = ApiKey.objects.get(user=user)
    assert migrated.prefix == old_key[:8] and migrated.name == "token (migrated)"
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Token {old_key}").json()["username"] == "credit_employee"


# ---------------------------------------------------------------------------------------------
# Sign-in rate limits


def test_login_form_is_refused_after_too_many_failures_for_one_username(people, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "credit_employee", "password": "wrong"}).status_code == 200
    # Now even the right password is refused, with a time to come back.
    response = client.post("/accounts/login/", {"username": "Credit_Employee", "password": password})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post("/accounts/login/", {"username": "credit_employee", "password": password})
    assert zh.status_code == 429 and "登录失败次数过多" in zh.content.decode()
    # Another user is unaffected.
    other = Client().post("/accounts/login/", {"username": "hr_employee", "password": password})
    assert other.status_code == 302


def test_login_is_refused_after_too_many_failures_from_one_ip(people, password, settings):
    settings.LOGIN_FAILURES_PER_IP = 4
    client = Client(REMOTE_ADDR="10.1.2.3")
    for i in range(4):
        client.post("/accounts/login/", {"username": f"nobody{i}", "password": "x"})
    assert client.post("/accounts/login/", {"username": "hr_employee", "password": password}).status_code == 429
    assert Client(REMOTE_ADDR="10.9.9.9").post("/accounts/login/", {"username": "hr_employee", "password": password}).status_code == 302


def test_token_endpoint_is_rate_limited_with_retry_after(people, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    client = APIClient()
    for _ in range(2):
        assert client.post("/api/auth/token/", {"username": "hr_employee", "password": "bad"}).status_code == 400
    response = client.post("/api/auth/token/", {"username": "hr_employee", "password": password})
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert "Too many failed sign-in attempts" in response.json()["detail"]
    assert not ApiKey.objects.filter(user=people["hr_employee"]).exists()
    assert RateLimitCounter.objects.filter(key="login:user:hr_employee").get().count == 2


@pytest.mark.django_db(transaction=True)
def test_guesses_sent_in_parallel_cannot_pass_the_username_limit(people, password, settings, monkeypatch):
    """Eight wrong passwords for one username at once, with a limit of 3: only 3 are checked. (Counted
    after the check, every one passed the early check while none had failed yet.)"""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from accounts.models import User

    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.LOGIN_FAILURES_PER_IP = 100
    checked = []
    real_check = User.check_password

    def slow_check(user, raw):
        checked.append(raw)
        time.sleep(0.5)  # a hasher's time, long enough for every guess to arrive meanwhile
        return real_check(user, raw)

    monkeypatch.setattr(User, "check_password", slow_check)
    barrier = threading.Barrier(8)

    def guess(i):
        try:
            barrier.wait()
            return Client().post("/accounts/login/", {"username": "credit_employee", "password": f"wrong{i}"}).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(guess, range(8)))
    assert codes.count(200) + codes.count(429) == 8
    assert len(checked) == 3
    assert RateLimitCounter.objects.get(key="login:user:credit_employee").count == 3
    assert Client().post("/accounts/login/", {"username": "credit_employee", "password": password}).status_code == 429


def test_successful_sign_ins_do_not_count(people, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(4):
        assert Client().post("/accounts/login/", {"username": "hr_employee", "password": password}).status_code == 302
    assert Client().post("/accounts/login/", {"username": "hr_employee", "password": "bad"}).status_code == 200
    assert Client().post("/accounts/login/", {"username": "hr_employee", "password": password}).status_code == 302
    assert RateLimitCounter.objects.get(key="login:user:hr_employee").count == 1
    assert APIClient().post("/api/auth/token/", {"username": "hr_employee", "password": password}).status_code == 200
    assert RateLimitCounter.objects.get(key="login:user:hr_employee").count == 1


@pytest.mark.parametrize("payload", [{}, {"username": "x" * 5000, "password": "y"}, {"username": "a", "password": ""}])
def test_token_endpoint_bad_input_is_a_400(db, payload):
    assert APIClient().post("/api/auth/token/", payload).status_code == 400


def test_django_admin_login_is_rate_limited_too(people, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    client = Client()
    for _ in range(2):
        client.post("/django-admin/login/", {"username": "root", "password": "wrong"})
    client.post("/django-admin/login/", {"username": "root", "password": password})
    assert "_auth_user_id" not in client.session
    assert RateLimitCounter.objects.get(key="login:user:root").count >= 2
