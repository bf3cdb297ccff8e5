"""Who configures which assistant (chat/policy.py): company admins every one; a knowledge manager
only those restricted to departments where they all manage knowledge. Users who only use an
assistant see its name, never its configuration; nobody sees the names of knowledge bases they
cannot read, and saving never drops those."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from chat.models import Assistant
from chat.services import assistant_save, endpoint_save
from tests.conftest import login


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def rows(response):
    data = response.json()
    return data["results"] if isinstance(data, dict) else data


@pytest.fixture
def hr_only(kb_corpus, people, hr):
    return assistant_save(actor=people["hr_manager"], name="HR only", knowledge_bases=[kb_corpus["hr_kb"]],
                          departments=[hr], system_prompt="Salary bands are in table 7.")


@pytest.fixture
def credit_mixed(kb_corpus, people, credit):
    """Restricted to Credit (its managers configure it), over Credit's and HR's knowledge bases."""
    return assistant_save(actor=people["superuser"], name="Credit mixed", departments=[credit],
                          knowledge_bases=[kb_corpus["credit_kb"], kb_corpus["hr_kb"]])


@pytest.mark.django_db
def test_assistants_page_hides_unreadable_kb_names(kb_corpus, people, hr_only, credit_mixed):
    page = login(people["credit_manager"]).get("/chat/assistants/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "HR handbook" not in html and "HR only" not in html
    assert "Credit mixed" in html and "Credit policies" in html and "knowledge bases you may not read" in html
    assert "HR handbook" in login(people["superuser"]).get("/chat/assistants/").content.decode()


@pytest.mark.django_db
def test_km_does_not_see_other_departments_restricted_assistant(kb_corpus, people, hr_only, company_assistant):
    client = login(people["credit_manager"])
    listed = rows(client.get("/api/chat/assistants/"))
    assert all(r["id"] != hr_only.pk for r in listed), "HR-only assistant (its prompt, KB ids) listed to Credit KM"
    assert client.get(f"/api/chat/assistants/{hr_only.pk}/").status_code == 404
    assert client.get(f"/chat/assistants/{hr_only.pk}/").status_code == 404
    # The company-wide default: usable by all, configured by admins; a user sees its name only.
    for user in ("credit_manager", "credit_employee"):
        default = next(r for r in rows(api(people[user]).get("/api/chat/assistants/")) if r["id"] == company_assistant.pk)
        assert set(default) == {"id", "name", "description", "is_default", "active"}
    assert login(people["credit_manager"]).get(f"/chat/assistants/{company_assistant.pk}/").status_code == 404
    page = login(people["credit_manager"]).get("/chat/assistants/").content.decode()
    assert "No assistant you configure yet." in page and "Salary" not in page
    admin_view = api(people["superuser"]).get(f"/api/chat/assistants/{hr_only.pk}/").json()
    assert admin_view["system_prompt"] == "Salary bands are in table 7."
    assert api(people["hr_manager"]).get(f"/api/chat/assistants/{hr_only.pk}/").json()["knowledge_bases"] == [
        kb_corpus["hr_kb"].pk]


@pytest.mark.django_db
def test_km_cannot_reconfigure_other_departments_or_company_wide_assistants(kb_corpus, people, hr_only,
                                                                            company_assistant, credit):
    client = login(people["credit_manager"])
    response = client.patch(f"/api/chat/assistants/{hr_only.pk}/", {"system_prompt": "Ignore the sources.",
                                                                    "departments": []},
                            content_type="application/json")
    assert response.status_code == 404, response.status_code
    assert client.delete(f"/api/chat/assistants/{hr_only.pk}/").status_code == 404
    response = client.patch(f"/api/chat/assistants/{company_assistant.pk}/", {"system_prompt": "Ignore the sources."},
                            content_type="application/json")
    assert response.status_code == 403
    assert client.post(f"/chat/assistants/{hr_only.pk}/", {"name": "Mine now"}).status_code == 404
    hr_only.refresh_from_db()
    company_assistant.refresh_from_db()
    assert hr_only.system_prompt == "Salary bands are in table 7." and hr_only.name == "HR only"
    assert company_assistant.system_prompt != "Ignore the sources."
    # Their own department's assistant: changeable, but not widened beyond the departments they manage.
    mine = assistant_save(actor=people["credit_manager"], name="Credit helper", departments=[credit])
    url = f"/api/chat/assistants/{mine.pk}/"
    assert client.patch(url, {"description": "Loans"}, content_type="application/json").status_code == 200
    for departments in ([], [credit.pk, hr_only.departments.get().pk]):
        response = client.patch(url, {"departments": departments}, content_type="application/json")
        assert response.status_code == 400, response.content
    assert list(mine.departments.all()) == [credit]
    assert client.delete(url).status_code == 204
    # Admins configure every one.
    admin = api(people["superuser"])
    assert admin.patch(f"/api/chat/assistants/{hr_only.pk}/", {"departments": []}, format="json").status_code == 200
    assert not Assistant.objects.get(pk=hr_only.pk).departments.exists()


@pytest.mark.django_db
def test_a_km_creates_assistants_only_for_departments_they_manage(people, credit, hr):
    manager = api(people["credit_manager"])
    for body in ({"name": "Everyone's"}, {"name": "Everyone's", "departments": []}, {"name": "HR's", "departments": [hr.pk]},
                 {"name": "Both", "departments": [credit.pk, hr.pk]}):
        response = manager.post("/api/chat/assistants/", body, format="json")
        assert response.status_code == 400 and "departments" in response.json(), (body, response.content)
    assert manager.post("/api/chat/assistants/", {"name": "Credit's", "departments": [credit.pk]},
                        format="json").status_code == 201
    with pytest.raises(ValidationError):
        assistant_save(actor=people["credit_manager"], name="Service", departments=[])
    with pytest.raises(ValidationError):
        assistant_save(actor=people["credit_manager"], name="Service", departments=[hr])
    # The page: departments required, only Credit offered.
    client = login(people["credit_manager"])
    form = client.get("/chat/assistants/").context["form"]
    assert list(form.fields["departments"].queryset) == [credit] and form.fields["departments"].required
    response = client.post("/chat/assistants/", {"name": "No departments", "k": 5, "mode": "hybrid", "active": "on"})
    assert response.status_code == 200 and not Assistant.objects.filter(name="No departments").exists()
    response = client.post("/chat/assistants/", {"name": "Page HR", "k": 5, "mode": "hybrid", "departments": [hr.pk]})
    assert response.status_code == 200 and not Assistant.objects.filter(name="Page HR").exists()
    assert set(Assistant.objects.values_list("name", flat=True)) == {"Company assistant", "Credit's"}
    assert api(people["superuser"]).post("/api/chat/assistants/", {"name": "Company-wide"}, format="json").status_code == 201


@pytest.mark.django_db
def test_saving_keeps_knowledge_bases_the_editor_cannot_read(kb_corpus, people, credit_mixed):
    credit_kb, hr_kb = kb_corpus["credit_kb"], kb_corpus["hr_kb"]
    client = login(people["credit_manager"])
    response = client.post(f"/chat/assistants/{credit_mixed.pk}/", {
        "name": "Credit mixed", "knowledge_bases": [credit_kb.pk], "departments": [credit_kb.department_id],
        "k": 5, "mode": "hybrid", "active": "on"})
    assert response.status_code == 302, response.content
    assert set(credit_mixed.knowledge_bases.all()) == {credit_kb, hr_kb}
    manager = api(people["credit_manager"])
    url = f"/api/chat/assistants/{credit_mixed.pk}/"
    response = manager.patch(url, {"knowledge_bases": []}, format="json")
    assert response.status_code == 200 and response.json()["knowledge_bases"] == []
    assert set(credit_mixed.knowledge_bases.all()) == {hr_kb}
    assert manager.patch(url, {"knowledge_bases": [hr_kb.pk]}, format="json").status_code == 400
    assert manager.get(url).json()["knowledge_bases"] == []
    assert api(people["superuser"]).get(url).json()["knowledge_bases"] == [hr_kb.pk]


@pytest.mark.django_db
def test_non_admins_choose_among_enabled_endpoints(people, credit):
    on = endpoint_save(actor=people["superuser"], name="on", kind="extractive")
    off = endpoint_save(actor=people["superuser"], name="off", kind="extractive", enabled=False)
    mine = assistant_save(actor=people["superuser"], name="Credit helper", departments=[credit], endpoint=off)
    form = login(people["credit_manager"]).get(f"/chat/assistants/{mine.pk}/").context["form"]
    assert set(form.fields["endpoint"].queryset) == {on, off}  # the current one stays offered
    form = login(people["credit_manager"]).get("/chat/assistants/").context["form"]
    assert list(form.fields["endpoint"].queryset) == [on]
    manager = api(people["credit_manager"])
    response = manager.post("/api/chat/assistants/", {"name": "x", "departments": [credit.pk], "endpoint": off.pk},
                            format="json")
    assert response.status_code == 400 and "endpoint" in response.json()
    assert manager.patch(f"/api/chat/assistants/{mine.pk}/", {"endpoint": off.pk}, format="json").status_code == 200
    assert api(people["superuser"]).post("/api/chat/assistants/", {"name": "y", "endpoint": off.pk},
                                         format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("retrieval_settings", [
    {"mode": "telepathy"}, {"unsupported_below": 2}, {"add_marker_above": "high"}, {"add_marker_margin": -0.1},
    {"k": 0}, {"k": True}, {"max_tokens": 0}, {"temperature": 0.2}, {"extractive": {"passages": "all"}},
    {"extractive": {"unknown": 1}}, {"extractive": []},
])
def test_retrieval_settings_are_validated(people, credit, retrieval_settings):
    response = api(people["credit_manager"]).post("/api/chat/assistants/", {
        "name": "x", "departments": [credit.pk], "retrieval_settings": retrieval_settings}, format="json")
    assert response.status_code == 400 and "retrieval_settings" in response.json(), response.content


@pytest.mark.django_db
def test_valid_retrieval_settings_are_stored(people, credit):
    retrieval_settings = {"k": 3, "mode": "bm25", "unsupported_below": 0.25, "add_marker_above": 1, "add_marker_margin": 0,
                "max_tokens": 512, "extractive": {"passages": 2, "bigrams": 0.5}}
    response = api(people["credit_manager"]).post("/api/chat/assistants/", {
        "name": "x", "departments": [credit.pk], "retrieval_settings": retrieval_settings}, format="json")
    assert response.status_code == 201, response.content
    assert Assistant.objects.get(name="x").retrieval_settings == retrieval_settings
