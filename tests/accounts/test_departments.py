"""Departments: what a department's admin may change, and what deleting one must not leave behind."""

import pytest
from django.core.exceptions import ValidationError
from guardian.models import UserObjectPermission
from rest_framework.test import APIClient

from accounts.models import Department, Role
from accounts.services import department_delete, department_update
from chat.models import Assistant
from chat.policy import assistant_policy
from core.models import AuditEntry
from tests.factories import DepartmentFactory, grant_object, member


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_department_admin_renames_their_department_but_does_not_move_or_recode_it(people, credit, hr):
    client = api(people["credit_admin"])
    response = client.patch(f"/api/departments/{credit.pk}/", {"parent": hr.pk, "code": "taken-over"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"parent", "code"}
    credit.refresh_from_db()
    assert (credit.parent_id, credit.code, credit.name) == (None, "credit", "Credit")
    # Sending the values it has is no change.
    renamed = client.patch(f"/api/departments/{credit.pk}/", {"name": "Credit & Loans", "code": "credit",
                                                              "parent": None}, format="json")
    assert renamed.status_code == 200, renamed.content
    credit.refresh_from_db()
    assert credit.name == "Credit & Loans"
    with pytest.raises(ValidationError):
        department_update(actor=people["credit_admin"], department=credit, code="x")
    # The company's admins restructure.
    moved = api(people["superuser"]).patch(f"/api/departments/{credit.pk}/", {"parent": hr.pk, "code": "loans"},
                                           format="json")
    assert moved.status_code == 200, moved.content
    credit.refresh_from_db()
    assert (credit.parent_id, credit.code) == (hr.pk, "loans")


def test_a_department_that_restricts_assistants_is_not_deleted(people, credit):
    """Deleting it emptied the assistants' department list, and an assistant restricted to no
    department is open to every signed-in user."""
    legal = DepartmentFactory(code="legal", name="Legal")
    member(legal, Role.EMPLOYEE, "lawyer")
    assistant = Assistant.objects.create(name="Legal helper")
    assistant.departments.add(legal)
    with pytest.raises(ValidationError, match="“Legal helper”"):
        department_delete(actor=people["superuser"], department=legal)
    response = api(people["superuser"]).delete(f"/api/departments/{legal.pk}/")
    assert response.status_code == 400 and "Legal helper" in str(response.json())
    assert Department.objects.filter(pk=legal.pk).exists()
    assert list(assistant.departments.all()) == [legal]
    usable = assistant_policy.instances_user_has_permission_for(people["credit_employee"], "use")
    assert not usable.filter(pk=assistant.pk).exists()
    # Once the assistant is restricted elsewhere, the department goes.
    assistant.departments.set([credit])
    department_delete(actor=people["superuser"], department=legal)
    assert not Department.objects.filter(pk=legal.pk).exists()


def test_deleting_a_department_through_the_api_is_audited_and_drops_its_grants(people):
    legal = DepartmentFactory(code="legal2", name="Legal 2")
    member(legal, Role.ADMIN, "legal_admin")
    grant_object(people["hr_employee"], "view_knowledge", legal)
    assert api(people["credit_admin"]).delete(f"/api/departments/{legal.pk}/").status_code == 403
    response = api(people["superuser"]).delete(f"/api/departments/{legal.pk}/")
    assert response.status_code == 204, response.content
    assert not Department.objects.filter(pk=legal.pk).exists()
    entry = AuditEntry.objects.get(action="delete")
    assert (entry.actor, entry.details["code"]) == (people["superuser"], "legal2")
    assert entry.details["memberships"] == [{"user": "legal_admin", "role": "admin"}]
    assert entry.details["object_permissions"] == ["hr_employee:view_knowledge"]
    assert not UserObjectPermission.objects.filter(object_pk=str(legal.pk)).exists()
