"""The acting user's department sets are built once per request, and still see changes made after."""

import pytest

import accounts.policy
from accounts.models import Membership, Role
from accounts.policy import Capability, departments_for
from tests.factories import KnowledgeBaseFactory, UserFactory, grant_object, member, published_document


@pytest.fixture
def built(monkeypatch):
    """Counts how often guardian's object-permission queryset is built (the real function runs)."""
    calls = []
    real = accounts.policy.get_objects_for_user

    def counting(user, perms, **kwargs):
        calls.append(tuple(perms))
        return real(user, perms, **kwargs)

    monkeypatch.setattr(accounts.policy, "get_objects_for_user", counting)
    return calls


@pytest.mark.django_db
def test_a_page_builds_each_department_set_once(people, credit, client_for, built):
    kb = KnowledgeBaseFactory(department=credit)
    doc = published_document(kb, people["credit_manager"], people["reviewer"])
    client = client_for(people["credit_manager"])
    for url in (f"/knowledge/bases/{kb.pk}/", f"/knowledge/documents/{doc.pk}/"):
        built.clear()
        assert client.get(url).status_code == 200
        # One build per capability asked (view, manage, review, manage members), however many
        # times the page, its nav and the policies ask (17 builds per page before).
        assert len(built) == len(set(built)) <= len(Capability), built


@pytest.mark.django_db
def test_a_membership_granted_or_revoked_later_is_seen_by_the_same_user_object(credit, hr):
    user = member(credit, Role.EMPLOYEE)
    assert set(departments_for(user, Capability.VIEW_KNOWLEDGE).values_list("pk", flat=True)) == {credit.pk}
    Membership.objects.create(user=user, department=hr, role=Role.EMPLOYEE)
    assert set(departments_for(user, Capability.VIEW_KNOWLEDGE).values_list("pk", flat=True)) == {credit.pk, hr.pk}
    Membership.objects.filter(user=user, department=credit).delete()
    assert set(departments_for(user, Capability.VIEW_KNOWLEDGE).values_list("pk", flat=True)) == {hr.pk}


@pytest.mark.django_db
def test_an_object_permission_granted_later_is_seen_and_users_do_not_share_sets(credit, hr):
    user, other = UserFactory(), member(hr, Role.KNOWLEDGE_MANAGER)
    assert not departments_for(user, Capability.MANAGE_KNOWLEDGE).exists()
    assert set(departments_for(other, Capability.MANAGE_KNOWLEDGE).values_list("pk", flat=True)) == {hr.pk}
    grant_object(user, "manage_knowledge", credit)  # guardian's row; the same `user` object asks again
    assert set(departments_for(user, Capability.MANAGE_KNOWLEDGE).values_list("pk", flat=True)) == {credit.pk}
    assert set(departments_for(other, Capability.MANAGE_KNOWLEDGE).values_list("pk", flat=True)) == {hr.pk}
