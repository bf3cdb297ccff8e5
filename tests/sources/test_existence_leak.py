"""A knowledge base the user may not manage, given as a source's target, answers exactly like one
that does not exist: same status, same body, nothing created."""

import pytest

from knowledge.models import KnowledgeBase
from sources.models import Source
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory



def _create(client, knowledge_base_id):
    return client.post("/api/sources/", {
        "knowledge_base": knowledge_base_id, "kind": "http", "name": "X", "url": "https://a.example/",
        "key_field": "id", "title_template": "t", "body_template": "b",
    }, content_type="application/json")


@pytest.mark.parametrize("who", ["hr_manager", "credit_employee", "outsider"])
def test_a_hidden_knowledge_base_answers_like_a_missing_one(people, credit, who):
    hidden = KnowledgeBaseFactory(department=credit, name="Credit only")
    missing_id = (KnowledgeBase.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    client = login(people[who])
    for_hidden, for_missing = _create(client, hidden.pk), _create(client, missing_id)
    # 400 for a manager elsewhere; 403 for whoever manages no knowledge at all
    assert for_hidden.status_code == for_missing.status_code == (400 if who == "hr_manager" else 403)
    assert for_hidden.content.decode() == for_missing.content.decode().replace(str(missing_id), str(hidden.pk))
    assert not Source.objects.exists()
    # The form pages take the knowledge base from the URL: both are a 404.
    assert client.get(f"/sources/knowledge-bases/{hidden.pk}/new/http/").status_code == 404
    assert client.get(f"/sources/knowledge-bases/{missing_id}/new/http/").status_code == 404
