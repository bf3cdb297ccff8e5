import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from accounts.models import Membership, Role
from accounts.policy import (
    Capability,
    department_policy,
    departments_for,
    membership_policy,
    user_has_capability,
    user_policy,
)
from tests.factories import grant_object, member

V, M, R, P = (
    Capability.VIEW_KNOWLEDGE,
    Capability.MANAGE_KNOWLEDGE,
    Capability.REVIEW_KNOWLEDGE,
    Capability.MANAGE_MEMBERS,
)

# What each role may do in its own department, written out by hand (not derived from the code).
EXPECTED_OWN = {
    Role.ADMIN: {V: True, M: True, R: False, P: True},
    Role.KNOWLEDGE_MANAGER: {V: True, M: True, R: False, P: False},
    Role.COMPLIANCE_REVIEWER: {V: True, M: False, R: True, P: False},
    Role.EMPLOYEE: {V: True, M: False, R: False, P: False},
}


@pytest.mark.parametrize("role", list(EXPECTED_OWN))
@pytest.mark.parametrize("capability", [V, M, R, P])
def test_role_matrix_over_two_departments(credit, hr, role, capability):
    user = member(credit, role)
    assert user_has_capability(user, capability, credit) is EXPECTED_OWN[role][capability]
    # A role in Credit gives nothing at all in HR.
    assert user_has_capability(user, capability, hr) is False
    expected_ids = {credit.pk} if EXPECTED_OWN[role][capability] else set()
    assert set(departments_for(user, capability).values_list("pk", flat=True)) == expected_ids


def test_global_review_permission_covers_every_department(people, credit, hr, compliance):
    reviewer = people["reviewer"]
    for department in (credit, hr, compliance):
        assert user_has_capability(reviewer, R, department)
        assert user_has_capability(reviewer, V, department)  # reviewing needs reading
        assert not user_has_capability(reviewer, M, department)


def test_guardian_object_permission_shares_one_department(people, credit, hr):
    employee = grant_object(people["credit_employee"], "view_knowledge", hr)
    assert user_has_capability(employee, V, hr)
    assert not user_has_capability(employee, M, hr)
    assert set(departments_for(employee, V)) == {credit, hr}


def test_object_manage_permission_implies_view_but_not_review(people, hr):
    outsider = grant_object(people["outsider"], "manage_knowledge", hr)
    assert user_has_capability(outsider, M, hr)
    assert user_has_capability(outsider, V, hr)
    assert not user_has_capability(outsider, R, hr)


@pytest.mark.parametrize("capability", [V, M, R, P])
def test_superuser_anonymous_inactive_and_outsider(people, credit, capability):
    assert user_has_capability(people["superuser"], capability, credit)
    assert not user_has_capability(people["outsider"], capability, credit)
    assert not departments_for(AnonymousUser(), capability).exists()
    inactive = people["credit_admin"]
    inactive.is_active = False
    inactive.save()
    assert not user_has_capability(inactive, capability, credit)


def test_department_directory_is_readable_but_only_admins_write(people, credit, hr):
    for name, user in people.items():
        assert set(department_policy.instances_user_has_permission_for(user, "view")) >= {credit, hr}, name
    assert department_policy.user_has_permission(people["superuser"], "add")
    assert not department_policy.user_has_permission(people["credit_admin"], "add")
    assert department_policy.user_has_permission_for_instance(people["credit_admin"], "change", credit)
    assert not department_policy.user_has_permission_for_instance(people["credit_admin"], "change", hr)
    assert not department_policy.user_has_permission_for_instance(people["credit_manager"], "change", credit)
    assert not department_policy.user_has_permission(AnonymousUser(), "view")


def test_membership_visibility(people, credit, hr):
    own = Membership.objects.get(user=people["credit_employee"])
    hr_membership = Membership.objects.get(user=people["hr_employee"])
    employee_sees = set(membership_policy.instances_user_has_permission_for(people["credit_employee"], "view"))
    assert employee_sees == {own}
    admin_sees = set(membership_policy.instances_user_has_permission_for(people["credit_admin"], "view"))
    assert admin_sees == set(Membership.objects.filter(department=credit))
    assert hr_membership not in admin_sees
    with pytest.raises(Http404):
        membership_policy.instance_for_user(people["credit_admin"], "view", hr_membership.pk)
    with pytest.raises(Http404):
        membership_policy.instance_for_user(people["credit_admin"], "view", 999_999)
    assert membership_policy.user_has_permission_for_instance(people["credit_admin"], "delete", own)
    assert not membership_policy.user_has_permission_for_instance(people["credit_employee"], "delete", own)


def test_user_visibility(people):
    admin_sees = set(user_policy.instances_user_has_permission_for(people["credit_admin"], "view"))
    assert people["credit_employee"] in admin_sees and people["hr_employee"] not in admin_sees
    assert set(user_policy.instances_user_has_permission_for(people["hr_employee"], "view")) == {people["hr_employee"]}
    assert user_policy.user_has_permission(people["credit_admin"], "add")
    assert not user_policy.user_has_permission(people["credit_manager"], "add")
    assert user_policy.instances_user_has_permission_for(people["superuser"], "view").count() == len(people)


def test_unknown_action_is_a_programming_error(people):
    with pytest.raises(ValueError):
        department_policy.instances_user_has_permission_for(people["superuser"], "publish")
