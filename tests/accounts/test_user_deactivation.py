"""Offboarding: a company admin deactivates an account. It can no longer sign in, its open sessions
end, its API keys are revoked (and stay revoked when it is reactivated)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from core.models import AuditEntry
from tests.conftest import login
from tests.factories import grant_global

pytestmark = pytest.mark.django_db


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def company_admin(people):
    """A company admin who is not a superuser (the people-management permission)."""
    return grant_global(people["outsider"], "manage_members")


def test_a_deactivated_account_loses_sign_in_sessions_and_api_keys(people, password, company_admin):
    employee = people["credit_employee"]
    _row, key = api_key_create(user=employee, name="laptop")
    assert bearer(key).get("/api/me/").status_code == 200
    session = login(employee)
    assert session.get("/").status_code == 200

    response = login(company_admin).post(f"/people/users/{employee.pk}/active/", {"active": "0"}, follow=True)
    assert response.status_code == 200
    assert "credit_employee was deactivated" in response.content.decode() and "1 API key was revoked" in response.content.decode()
    assert not User.objects.get(pk=employee.pk).is_active
    assert bearer(key).get("/api/me/").status_code == 401
    assert session.get("/").status_code == 302  # the open session ended: back to the login page
    assert Client().post("/accounts/login/", {"username": "credit_employee", "password": password}).status_code == 200
    assert AuditEntry.objects.filter(action="permission_change", details__event="user_deactivated",
                                     details__api_keys_revoked=1).exists()
    page = login(company_admin).get("/people/").content.decode()
    assert 'data-testid="inactive"' in page and "Reactivate" in page

    response = login(company_admin).post(f"/people/users/{employee.pk}/active/", {"active": "1"}, follow=True)
    assert "may sign in again" in response.content.decode()
    assert Client().post("/accounts/login/", {"username": "credit_employee", "password": password}).status_code == 302
    assert bearer(key).get("/api/me/").status_code == 401  # the old key stays revoked
    assert ApiKey.objects.get(user=employee).revoked_at is not None


def test_only_company_admins_change_accounts_and_never_their_own(people, company_admin):
    employee = people["credit_employee"]
    # a department admin manages Credit's memberships, not accounts
    credit_admin = login(people["credit_admin"])
    assert credit_admin.post(f"/people/users/{employee.pk}/active/", {"active": "0"}).status_code == 404
    assert "Deactivate" not in credit_admin.get("/people/").content.decode()
    assert login(people["credit_employee"]).post(f"/people/users/{employee.pk}/active/", {"active": "0"}).status_code == 403
    assert User.objects.get(pk=employee.pk).is_active
    # never one's own, and a superuser only by a superuser
    admin = login(company_admin)
    response = admin.post(f"/people/users/{company_admin.pk}/active/", {"active": "0"}, follow=True)
    assert "You cannot deactivate your own account." in response.content.decode()
    response = admin.post(f"/people/users/{people['superuser'].pk}/active/", {"active": "0"}, follow=True)
    assert "You may not change this account." in response.content.decode()
    assert User.objects.get(pk=company_admin.pk).is_active and User.objects.get(pk=people["superuser"].pk).is_active
    # anything but active=0 or 1 is a 400 that changes nothing
    for body in ({}, {"active": "yes"}, {"active": "0" * 10000}, {"active": ["0", "1"]}):
        assert admin.post(f"/people/users/{people['credit_employee'].pk}/active/", body).status_code == 400, body
    assert User.objects.get(pk=people["credit_employee"].pk).is_active
    # the page offers the button for others only
    page = admin.get("/people/").content.decode()
    assert 'data-testid="account-credit_employee"' in page and 'data-testid="account-outsider"' not in page
    assert 'data-testid="account-root"' not in page
    assert 'data-testid="account-outsider"' in login(people["superuser"]).get("/people/").content.decode()
    # in Chinese
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(company_admin)
    assert "停用" in page.get("/people/").content.decode()


def test_the_api_deactivates_and_reactivates(people, company_admin):
    employee = people["credit_employee"]
    _row, key = api_key_create(user=employee)
    client = APIClient()
    client.force_authenticate(company_admin)
    response = client.post(f"/api/users/{employee.pk}/deactivate/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert bearer(key).get("/api/me/").status_code == 401
    response = client.post(f"/api/users/{employee.pk}/reactivate/")
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert client.post(f"/api/users/{company_admin.pk}/deactivate/").status_code == 400
    assert client.post(f"/api/users/{people['superuser'].pk}/deactivate/").status_code == 403
    for bad in ("999999", "²", "abc", "-1"):
        assert client.post(f"/api/users/{bad}/deactivate/").status_code == 404, bad
    # these actions take no body: nested JSON or a huge string is a 400 that changes nothing
    for body in ({"is_active": {"x": [1]}}, {"user": "x" * 100000}, [1, 2]):
        assert client.post(f"/api/users/{employee.pk}/deactivate/", body, format="json").status_code == 400, body
    assert User.objects.get(pk=employee.pk).is_active
    other = APIClient()
    other.force_authenticate(people["credit_admin"])
    assert other.post(f"/api/users/{employee.pk}/deactivate/").status_code in (403, 404)
    assert User.objects.get(pk=employee.pk).is_active
