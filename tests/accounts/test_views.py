import re

import pytest
from django.test import Client

from accounts.models import Department, Membership, Role, User
from core.demo import load_all


def nav_entries(html: str) -> set[str]:
    return set(re.findall(r'data-nav="(\w+)"', html))


DEMO_NAV = {
    "admin": {"knowledge", "chat", "training", "compliance", "admin", "health"},
    "credit_manager": {"knowledge", "chat", "health"},
    "credit_employee": {"knowledge", "chat"},
    "hr_manager": {"knowledge", "chat", "health"},
    "hr_employee": {"knowledge", "chat"},
    "compliance_reviewer": {"knowledge", "chat", "compliance", "health"},
}


@pytest.fixture
def demo(db, settings):
    settings.DEBUG = True
    load_all()
    load_all()  # idempotent: a second load changes nothing
    assert User.objects.filter(is_demo=True).count() == 6
    assert Department.objects.count() == 3


@pytest.mark.parametrize("username", list(DEMO_NAV))
def test_each_demo_user_logs_in_and_sees_their_navigation(demo, username):
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": "demo12345"}, follow=True)
    assert response.status_code == 200
    assert response.wsgi_request.user.username == username
    assert nav_entries(response.content.decode()) == DEMO_NAV[username]


def test_demo_users_are_refused_when_debug_is_off(demo, settings):
    settings.DEBUG = False
    response = Client().post("/accounts/login/", {"username": "admin", "password": "demo12345"})
    assert response.status_code == 200
    assert "Demo accounts are disabled when DEBUG is off." in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_wrong_password_is_refused_with_a_message(people):
    response = Client().post("/accounts/login/", {"username": "credit_employee", "password": "nope"})
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_and_password_change(people, password):
    client = Client()
    assert client.login(username="credit_employee", password=password)
    response = client.post(
        "/accounts/password/",
        {"old_password": password, "new_password1": "an0ther-Secret!", "new_password2": "an0ther-Secret!"},
        follow=True,
    )
    assert "Your password was changed." in response.content.decode()
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302
    assert Client().login(username="credit_employee", password="an0ther-Secret!")


def test_people_page_is_for_people_admins_only(people, client_for):
    assert client_for(people["credit_manager"]).get("/people/").status_code == 403
    assert client_for(people["credit_employee"]).get("/people/").status_code == 403
    page = client_for(people["credit_admin"]).get("/people/").content.decode()
    assert "credit_employee" in page and "hr_employee" not in page


def test_company_admin_creates_department_user_and_role(people, client_for):
    client = client_for(people["superuser"])
    response = client.post(
        "/people/departments/new/", {"dept-name": "Retail", "dept-name_zh": "零售部", "dept-code": "retail"}, follow=True
    )
    assert "Retail" in response.content.decode()
    retail = Department.objects.get(code="retail")
    response = client.post(
        "/people/users/new/",
        {"user-username": "li.na", "user-password": "Str0ng-pass-9", "user-department": retail.pk, "user-role": "knowledge_manager"},
        follow=True,
    )
    assert response.status_code == 200
    li = User.objects.get(username="li.na")
    assert li.check_password("Str0ng-pass-9")
    assert Membership.objects.get(user=li).role == Role.KNOWLEDGE_MANAGER
    # Change the role through the role form.
    client.post("/people/memberships/", {"member-user": li.pk, "member-department": retail.pk, "member-role": "admin"})
    assert Membership.objects.get(user=li).role == Role.ADMIN


def test_invalid_user_form_keeps_input_and_explains(people, client_for):
    client = client_for(people["superuser"])
    response = client.post("/people/users/new/", {"user-username": "credit_employee", "user-password": "123"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "This username is taken." in body
    assert User.objects.filter(username="credit_employee").count() == 1


def test_department_admin_cannot_assign_roles_outside_their_department(people, client_for, hr):
    client = client_for(people["credit_admin"])
    response = client.post(
        "/people/memberships/", {"member-user": people["credit_employee"].pk, "member-department": hr.pk, "member-role": "admin"}
    )
    assert response.status_code == 400  # HR is not a choice for them
    assert not Membership.objects.filter(user=people["credit_employee"], department=hr).exists()


def test_membership_removal_with_htmx(people, client_for):
    membership = Membership.objects.get(user=people["credit_employee"])
    client = client_for(people["credit_admin"])
    response = client.post(f"/people/memberships/{membership.pk}/delete/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content.strip() == b""
    assert not Membership.objects.filter(pk=membership.pk).exists()
    hr_membership = Membership.objects.get(user=people["hr_employee"])
    assert client.post(f"/people/memberships/{hr_membership.pk}/delete/").status_code == 404


def test_language_switch_to_simplified_chinese(people, client_for):
    client = client_for(people["credit_employee"])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    page = client.get("/").content.decode()
    assert 'lang="zh-hans"' in page
    assert "知识库" in page  # "Knowledge" in the navigation
    assert "信贷部" in page  # department names follow the language


def test_training_and_system_pages_are_for_admins(people, client_for):
    assert client_for(people["credit_employee"]).get("/training/").status_code == 403
    assert client_for(people["credit_admin"]).get("/training/").status_code == 200
    assert client_for(people["credit_admin"]).get("/system/").status_code == 403
    assert client_for(people["superuser"]).get("/system/").status_code == 200


def test_not_found_page_is_translated_html(people, client_for):
    response = client_for(people["credit_employee"]).get("/no-such-page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_api_key_page_shows_the_new_key_once(people, client_for):
    client = client_for(people["credit_employee"])
    response = client.post("/accounts/profile/keys/", {"name": "script"})
    token = re.search(r'data-testid="api-key">([\w-]+)<', response.content.decode()).group(1)
    page = client.get("/accounts/profile/").content.decode()
    assert token not in page and token[:12] in page
