import pytest
from rest_framework.test import APIClient

from chat.models import Assistant, ModelEndpoint
from sources.crypto import decrypt


def rows(response):
    data = response.json()
    return data["results"] if isinstance(data, dict) else data


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_endpoints_api_admins_only_key_encrypted_and_write_only(people):
    admin = api(people["superuser"])
    response = admin.post("/api/chat/endpoints/", {"name": "vllm", "kind": "openai", "base_url": "http://127.0.0.1:8001/v1",
                                                    "model": "deepseek-r1", "api_key": "sk-abc"}, format="json")
    assert response.status_code == 201, response.content
    assert "api_key" not in response.json() and response.json()["has_api_key"] is True
    endpoint = ModelEndpoint.objects.get(name="vllm")
    assert decrypt(endpoint.api_key_encrypted) == "sk-abc" and "sk-abc" not in endpoint.api_key_encrypted
    assert admin.post("/api/chat/endpoints/", {"name": "bad", "kind": "openai", "base_url": "ftp://x"},
                      format="json").status_code == 400
    employee = api(people["credit_employee"])
    assert rows(employee.get("/api/chat/endpoints/")) == []
    assert employee.post("/api/chat/endpoints/", {"name": "x", "kind": "extractive"}, format="json").status_code == 403


@pytest.mark.django_db
def test_assistants_api_configure_and_list_usable_only(people, credit, hr):
    from tests.factories import KnowledgeBaseFactory

    hr_kb = KnowledgeBaseFactory(department=hr)
    manager = api(people["credit_manager"])
    # A manager cannot attach a knowledge base they cannot read.
    assert manager.post("/api/chat/assistants/", {"name": "x", "departments": [credit.pk], "knowledge_bases": [hr_kb.pk]},
                        format="json").status_code == 400
    created = manager.post("/api/chat/assistants/", {"name": "Credit only", "departments": [credit.pk],
                                                     "retrieval_settings": {"k": 3}}, format="json")
    assert created.status_code == 201, created.content
    def names(client):
        return [a["name"] for a in rows(client.get("/api/chat/assistants/"))]

    assert "Credit only" in names(api(people["credit_employee"]))
    assert "Credit only" not in names(api(people["hr_employee"]))
    assert api(people["credit_employee"]).post("/api/chat/assistants/", {"name": "y"}, format="json").status_code == 403
    default = Assistant.objects.get(is_default=True)
    assert api(people["superuser"]).delete(f"/api/chat/assistants/{default.pk}/").status_code == 400
