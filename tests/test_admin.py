"""The Django admin never writes around the policy or the audit log: every model it shows is
read-only, even to a superuser, and deleting a department goes through the audited service."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import Department, Membership, Role
from core.models import AuditEntry
from tests.factories import DepartmentFactory, KnowledgeBaseFactory, UserFactory, grant_object, member

# model label -> the one admin write allowed, done through a service
SERVICE_BACKED = {"accounts.Department": {"delete"}}


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def test_every_admin_model_is_read_only_for_a_superuser(root):
    request = RequestFactory().get("/django-admin/")
    request.user = root
    for model, model_admin in admin.site._registry.items():
        allowed = SERVICE_BACKED.get(model._meta.label, set())
        assert model_admin.has_add_permission(request) is False, model._meta.label
        assert model_admin.has_change_permission(request) is False, model._meta.label
        assert model_admin.has_delete_permission(request) is ("delete" in allowed), model._meta.label
        for inline in model_admin.get_inline_instances(request):
            assert not inline.has_add_permission(request, None), inline
            assert not inline.has_delete_permission(request, None), inline
    labels = {model._meta.label for model in admin.site._registry}
    assert "authtoken.TokenProxy" not in labels  # token keys are credentials


def test_admin_pages_still_list_and_show(client, root, credit):
    client.force_login(root)
    user = member(credit, Role.EMPLOYEE, "reader")
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("admin:accounts_user_change", args=[user.pk])).status_code == 200


def test_admin_cannot_change_roles_or_memberships(client, root, credit):
    client.force_login(root)
    user = member(credit, Role.EMPLOYEE, "reader")
    membership = Membership.objects.get(user=user)
    response = client.post(
        reverse("admin:accounts_membership_change", args=[membership.pk]),
        {"user": user.pk, "department": credit.pk, "role": Role.ADMIN},
    )
    assert response.status_code == 403
    response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), {"username": user.username,
                                                                                   "is_superuser": "on"})
    assert response.status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == Role.EMPLOYEE
    user.refresh_from_db()
    assert not user.is_superuser


def test_deleting_a_department_in_the_admin_goes_through_the_audited_service(client, root):
    client.force_login(root)
    department = DepartmentFactory(code="temp", name="Temporary")  # no history yet
    reader = member(department, Role.EMPLOYEE, "temp_reader")
    grant_object(UserFactory(username="guest"), "view_knowledge", department)
    response = client.post(reverse("admin:accounts_department_delete", args=[department.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Department.objects.filter(pk=department.pk).exists()
    assert not Membership.objects.filter(user=reader).exists()
    entry = AuditEntry.objects.get(action="delete")
    assert entry.actor == root
    assert entry.details["code"] == "temp"
    assert entry.details["memberships"] == [{"user": "temp_reader", "role": "employee"}]
    assert entry.details["object_permissions"] == ["guest:view_knowledge"]


def test_a_department_that_owns_knowledge_is_not_deleted(client, root, credit):
    from accounts import services
    from django.core.exceptions import ValidationError

    KnowledgeBaseFactory(department=credit)
    with pytest.raises(ValidationError, match="knowledge bases"):
        services.department_delete(actor=root, department=credit)
    client.force_login(root)
    client.post(reverse("admin:accounts_department_delete", args=[credit.pk]), {"post": "yes"})
    assert Department.objects.filter(pk=credit.pk).exists()
    assert not AuditEntry.objects.filter(action="delete").exists()


def test_only_company_admins_may_delete_a_department(credit):
    from accounts import services
    from django.core.exceptions import PermissionDenied

    department = DepartmentFactory(code="temp2")
    with pytest.raises(PermissionDenied):
        services.department_delete(actor=member(credit, Role.ADMIN, "dept_admin"), department=department)
    assert Department.objects.filter(pk=department.pk).exists()
