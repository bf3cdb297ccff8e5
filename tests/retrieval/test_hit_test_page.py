"""Issue 12: hit testing opens without "This field is required", styled like the other pages, and
managers reach it from the top bar."""

from django.urls import reverse

from tests.conftest import login
from tests.factories import KnowledgeBaseFactory


def test_hit_testing_opens_clean_from_the_knowledge_base_page_and_the_top_bar(people, credit):
    kb = KnowledgeBaseFactory(department=credit, name="Credit rules")
    other = KnowledgeBaseFactory(department=credit, name="Another")
    client = login(people["credit_manager"])
    home = client.get(reverse("knowledge:index")).content.decode()
    assert f'href="{reverse("retrieval:hit_test")}" data-nav="hit-testing"' in home
    for url in (reverse("retrieval:hit_test"), reverse("retrieval:hit_test") + f"?knowledge_base={other.pk}"):
        response = client.get(url)
        page = response.content.decode()
        assert response.status_code == 200
        assert "This field is required" not in page and 'class="errors"' not in page
        assert "css/knowledge.css" in page  # the form is styled like the other pages
    assert f'<option value="{other.pk}" selected>' in page
    assert kb.pk


def test_readers_get_no_hit_testing_entry(people):
    page = login(people["credit_employee"]).get(reverse("knowledge:index")).content.decode()
    assert 'data-nav="hit-testing"' not in page
