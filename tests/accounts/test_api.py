import pytest
from rest_framework.test import APIClient

from accounts.models import Department, Membership, Role
from accounts.services import api_key_create
from core.models import AuditEntry


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_me_lists_memberships_and_navigation(people):
    body = api(people["credit_manager"]).get("/api/me/").json()
    assert body["username"] == "credit_manager"
    assert [(m["department_code"], m["role"]) for m in body["memberships"]] == [("credit", "knowledge_manager")]
    assert body["navigation"] == {
        "knowledge": True, "chat": True, "training": False, "compliance": False, "admin": False, "django_admin": False,
    }


def test_token_authentication(people, client, password):
    response = client.post("/api/auth/token/", {"username": "credit_employee", "password": password})
    assert response.status_code == 200
    key = response.json()["token"]
    me = APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert me.status_code == 200 and me.json()["username"] == "credit_employee"
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_departments_are_readable_by_everyone_and_written_by_admins(people, credit):
    assert len(api(people["hr_employee"]).get("/api/departments/").json()["results"]) == 3
    payload = {"name": "Retail", "name_zh": "零售部", "code": "retail"}
    for name in ("credit_manager", "credit_employee", "reviewer", "credit_admin"):
        assert api(people[name]).post("/api/departments/", payload).status_code == 403, name
    assert not Department.objects.filter(code="retail").exists()
    created = api(people["superuser"]).post("/api/departments/", payload)
    assert created.status_code == 201, created.content
    assert AuditEntry.objects.filter(action="create", object_repr="Retail").exists()
    # A department admin may rename their own department, not another one.
    assert api(people["credit_admin"]).patch(f"/api/departments/{credit.pk}/", {"name": "Credit & Loans"}).status_code == 200
    hr = Department.objects.get(code="hr")
    assert api(people["credit_admin"]).patch(f"/api/departments/{hr.pk}/", {"name": "Hacked"}).status_code == 403
    assert api(people["credit_manager"]).delete(f"/api/departments/{hr.pk}/").status_code == 403


def test_department_cannot_be_its_own_ancestor(people, credit, hr):
    hr.parent = credit
    hr.save()
    response = api(people["superuser"]).patch(f"/api/departments/{credit.pk}/", {"parent": hr.pk})
    assert response.status_code == 400
    assert "parent" in response.json()


def test_membership_writes_are_for_people_admins(people, credit, hr):
    outsider = people["outsider"]
    payload = {"user": outsider.pk, "department": credit.pk, "role": Role.EMPLOYEE}
    assert api(people["credit_manager"]).post("/api/memberships/", payload).status_code == 403
    # The credit admin cannot see the outsider (not in a department they manage): refused as unknown.
    assert api(people["credit_admin"]).post("/api/memberships/", payload).status_code == 400
    assert api(people["superuser"]).post("/api/memberships/", payload).status_code == 201
    membership = Membership.objects.get(user=outsider, department=credit)
    # Now the credit admin manages that membership, but cannot grant a role in HR.
    response = api(people["credit_admin"]).patch(f"/api/memberships/{membership.pk}/", {"role": "knowledge_manager"})
    assert response.status_code == 200 and response.json()["role"] == "knowledge_manager"
    hr_payload = {"user": outsider.pk, "department": hr.pk, "role": Role.ADMIN}
    assert api(people["credit_admin"]).post("/api/memberships/", hr_payload).status_code == 403
    assert not Membership.objects.filter(user=outsider, department=hr).exists()
    assert api(people["credit_admin"]).delete(f"/api/memberships/{membership.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = list(AuditEntry.objects.filter(action="permission_change").values_list("details__role", flat=True))
    assert actions == [None, "knowledge_manager", "employee"]  # newest first


def test_employee_sees_only_own_memberships_and_hidden_ones_are_404(people):
    client = api(people["credit_employee"])
    rows = client.get("/api/memberships/").json()["results"]
    assert [r["username"] for r in rows] == ["credit_employee"]
    other = Membership.objects.get(user=people["hr_manager"])
    assert client.get(f"/api/memberships/{other.pk}/").status_code == 404
    assert client.delete(f"/api/memberships/{other.pk}/").status_code == 404
    own = Membership.objects.get(user=people["credit_employee"])
    assert client.delete(f"/api/memberships/{own.pk}/").status_code == 403


def test_users_endpoint_follows_the_policy(people):
    usernames = {u["username"] for u in api(people["credit_admin"]).get("/api/users/").json()["results"]}
    assert "credit_employee" in usernames and "hr_employee" not in usernames
    hr_employee = people["hr_employee"]
    assert api(people["credit_admin"]).get(f"/api/users/{hr_employee.pk}/").status_code == 404


@pytest.mark.parametrize("debug,expected", [(True, 200), (False, 401)])
def test_demo_tokens_are_refused_when_debug_is_off(settings, people, debug, expected):
    demo = people["credit_employee"]
    demo.is_demo = True
    demo.save()
    _, key = api_key_create(user=demo)
    settings.DEBUG = debug
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == expected
    assert APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == expected
