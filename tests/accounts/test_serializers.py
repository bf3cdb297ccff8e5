"""What the API's serializers let a user learn about rows they may not see: nothing. A related
field offers and accepts only the rows the permission policy shows the requesting user, and the
API speaks JSON only (DRF's browsable API drew forms listing every row of a related field's table)."""

import pytest
from django.urls import get_resolver
from rest_framework import serializers
from rest_framework.test import APIClient

from accounts.models import Role
from tests.conftest import login
from tests.factories import DepartmentFactory, KnowledgeBaseFactory, MembershipFactory

PROJECT_APPS = ("accounts.", "chat.", "core.", "health.", "knowledge.", "retrieval.", "sources.", "training.")
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DOES_NOT_EXIST = 'Invalid pk "{}" - object does not exist.'


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _project_serializers():
    get_resolver().url_patterns  # imports every API module
    found, todo = [], [serializers.BaseSerializer]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(PROJECT_APPS):
            found.append(cls)
    return found


def test_every_writable_related_field_takes_its_rows_from_a_policy():
    """A PrimaryKeyRelatedField with a fixed queryset (Model.objects.all()) accepts, and tells apart,
    every id of the table whatever the user may see: each writable one computes its queryset."""
    fixed = []
    for cls in _project_serializers():
        for name, field in cls().fields.items():
            relation = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
            if isinstance(relation, serializers.RelatedField) and not field.read_only and relation.queryset is not None:
                fixed.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert len(_project_serializers()) > 20
    assert fixed == []


@pytest.mark.parametrize("who,url", [("credit_admin", "/api/memberships/"),
                                     ("credit_manager", "/api/chat/assistants/")])
def test_a_browser_gets_json_not_the_browsable_api(people, hr, who, url):
    """The browsable API's POST form listed every user / every knowledge base by name."""
    KnowledgeBaseFactory(department=hr, name="HR layoffs plan 2026")
    response = login(people[who]).get(url, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.content.decode()
    assert "<form" not in body and "HR layoffs plan 2026" not in body and "hr_employee" not in body
    assert login(people[who]).get(url, HTTP_ACCEPT="text/html").status_code == 406
    # The Swagger UI is drf-spectacular's own page: still there.
    docs = login(people[who]).get("/api/docs/")
    assert docs.status_code == 200 and docs["Content-Type"].startswith("text/html")


def test_membership_create_answers_a_hidden_user_like_a_missing_one(people, credit):
    """A department admin could tell a free user id ("does not exist") from another department's
    user ("Unknown user."), and so list every account id."""
    client = api(people["credit_admin"])
    hidden_pk = people["hr_employee"].pk
    answers = {
        pk: client.post("/api/memberships/", {"user": pk, "department": credit.pk, "role": Role.EMPLOYEE},
                        format="json")
        for pk in (987654, hidden_pk)
    }
    for pk, response in answers.items():
        assert (response.status_code, response.json()) == (400, {"user": [DOES_NOT_EXIST.format(pk)]})
    assert not people["hr_employee"].memberships.filter(department=credit).exists()
    # The people they manage are still theirs to place.
    retail = DepartmentFactory(code="retail", name="Retail")
    MembershipFactory(user=people["credit_admin"], department=retail, role=Role.ADMIN)
    placed = client.post("/api/memberships/", {"user": people["credit_employee"].pk, "department": retail.pk,
                                               "role": Role.EMPLOYEE}, format="json")
    assert placed.status_code == 201, placed.content


def test_assistant_answers_a_hidden_knowledge_base_like_a_missing_one(people, credit, hr):
    own = KnowledgeBaseFactory(department=credit, name="Credit policies")
    hidden = KnowledgeBaseFactory(department=hr, name="HR layoffs plan 2026")
    client = api(people["credit_manager"])
    for pk in (987654, hidden.pk):
        response = client.post("/api/chat/assistants/", {"name": "x", "departments": [credit.pk],
                                                         "knowledge_bases": [pk]}, format="json")
        assert (response.status_code, response.json()) == (400, {"knowledge_bases": [DOES_NOT_EXIST.format(pk)]})
    created = client.post("/api/chat/assistants/", {"name": "Credit helper", "departments": [credit.pk],
                                                    "knowledge_bases": [own.pk]}, format="json")
    assert created.status_code == 201 and created.json()["knowledge_bases"] == [own.pk], created.content
