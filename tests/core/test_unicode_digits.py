"""Characters that `str.isdigit()` accepts but `int()` refuses (superscripts such as "²") must
give a clear answer, never a 500 or an exception in a worker."""

import pytest
from django.test import Client

from sources.dsn_guard import RefusedDSN, vet_dsn
from sources.rendering import lookup
from tests.factories import KnowledgeBaseFactory, published_document
from training.datasets.pii import luhn_valid

SUPERSCRIPT_TWO = "\u00b2"


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def doc(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    return published_document(kb, people["credit_manager"], people["credit_reviewer"])


def test_compliance_pages_and_csv_with_a_superscript_author(people, doc):
    client = _client(people["credit_reviewer"])
    for url in ("/knowledge/compliance/", "/knowledge/compliance/print/", "/knowledge/compliance/versions.csv"):
        response = client.get(url, {"author": SUPERSCRIPT_TWO})
        assert response.status_code == 200, url
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # an error while streaming raises here


def test_audit_api_with_a_superscript_author_or_department(people, doc):
    client = _client(people["credit_reviewer"])
    for param in ("author", "department"):
        response = client.get("/api/audit/", {param: SUPERSCRIPT_TWO})
        assert response.status_code == 200, param
        assert response.json()["results"] == []  # read as a username / department code: none


def test_versions_reviews_and_dataset_versions_api_with_a_superscript_id(people, doc):
    client = _client(people["credit_manager"])
    assert client.get("/api/versions/", {"document": SUPERSCRIPT_TWO}).status_code == 400
    assert client.get("/api/reviews/", {"document": SUPERSCRIPT_TWO}).status_code == 200
    assert _client(people["superuser"]).get("/api/training/dataset-versions/", {"dataset": SUPERSCRIPT_TWO}).status_code == 400


def test_a_source_path_a_dsn_port_and_a_card_number_with_superscripts():
    with pytest.raises(KeyError):
        lookup({"items": [1, 2, 3]}, f"items.{SUPERSCRIPT_TWO}")
    with pytest.raises(RefusedDSN, match="port"):
        vet_dsn(f"postgresql://u@db.example.com:{SUPERSCRIPT_TWO}/x")
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("4111 1111 1111 111" + SUPERSCRIPT_TWO)
