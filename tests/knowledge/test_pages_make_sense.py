"""Issue 12, "Pages that make sense": what managers, readers and reviewers meet on the pages."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from knowledge import services
from knowledge.models import IngestionStatus, VersionIngestion
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document, member, published_document


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, name="Credit rules")


def test_a_manager_follows_their_own_submissions_instead_of_a_403(kb, people):
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    waiting = document(kb, manager, title="Waiting")
    services.document_submit(actor=manager, document=waiting)
    sent_back = document(kb, manager, title="Sent back")
    services.review_request_changes(
        actor=reviewer, review=services.document_submit(actor=manager, document=sent_back), comment="Fix the rate."
    )
    published_document(kb, manager, reviewer, title="Approved one")
    someone_elses = document(kb, people["credit_admin"], title="Not mine")
    services.document_submit(actor=people["credit_admin"], document=someone_elses)

    response = login(manager).get(reverse("knowledge:review_inbox"))
    assert response.status_code == 200
    page = response.content.decode()

    def group(state):
        block = re.search(rf'data-my-reviews="{state}">(.*?)</ul>', page, re.S).group(1)
        return re.findall(r'<a href="[^"]+">([^<]+) v\d+</a>', block)

    assert group("open") == ["Waiting"]
    assert group("changes_requested") == ["Sent back"]
    assert group("approved") == ["Approved one"]
    assert "Fix the rate." in page and "Not mine" not in page
    assert 'id="reviews"' not in page  # nothing to decide: no inbox table
    assert 'data-link="my-submissions"' in login(manager).get(reverse("knowledge:index")).content.decode()
    # readers have no reviews to follow
    assert login(people["credit_employee"]).get(reverse("knowledge:review_inbox")).status_code == 403


def test_sharing_says_not_shared_and_never_lists_the_owner(kb, credit, hr, people):
    client = login(people["credit_manager"])

    def sharing():
        index = client.get(reverse("knowledge:index")).content.decode()
        cell = re.search(rf'data-sharing="{kb.pk}">(.*?)</td>', index, re.S).group(1).strip()
        page = client.get(reverse("knowledge:knowledge_base", args=[kb.pk])).content.decode()
        line = re.search(r'id="sharing">(.*?)</p>', page, re.S).group(1)
        return cell, " ".join(line.split())

    assert sharing() == ("Not shared", "Shared with: Not shared")
    kb.shared_with.add(credit)  # the owner itself: still shared with nobody else
    assert sharing() == ("Not shared", "Shared with: Not shared")
    kb.shared_with.add(hr)
    assert sharing() == ("HR", "Shared with: HR")
    kb.shared_company_wide = True
    kb.save()
    assert sharing() == ("Company-wide", "Shared with: Company-wide")


def test_history_radio_buttons_are_labelled_compare_from_and_to(kb, people):
    manager = people["credit_manager"]
    doc = published_document(kb, manager, people["credit_reviewer"], content="v1")
    services.document_version_create(actor=manager, document=doc, content="v2", base_version_number=1, change_note="2")
    page = login(manager).get(reverse("knowledge:history", args=[doc.pk])).content.decode()
    for side, word in (("a", "from"), ("b", "to")):
        for number in (1, 2):
            label = re.search(rf'<label class="([^"]*)" for="{side}-{number}">(.*?)</label>', page, re.S)
            assert label and "visually-hidden" not in label.group(1)
            assert label.group(2).strip().endswith(word)
            assert f'aria-label="Compare {word} v{number}"' in label.group(2)


def test_history_labels_in_chinese(kb, people):
    manager = people["credit_manager"]
    doc = published_document(kb, manager, people["credit_reviewer"], content="v1")
    services.document_version_create(actor=manager, document=doc, content="v2", base_version_number=1, change_note="2")
    client = login(manager)
    page = client.get(reverse("knowledge:history", args=[doc.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert re.search(r'for="a-1">.*?> 从</label>', page, re.S) and re.search(r'for="b-1">.*?> 到</label>', page, re.S)


@pytest.mark.parametrize("language,sentence", [
    ("en", "This version could not be indexed for search yet; the people who edit this document can retry it."),
    ("zh-hans", "此版本暂未能建立检索索引；编辑此文档的人员可以重试。"),
])
def test_readers_get_a_sentence_not_an_exception_name_when_indexing_failed(kb, people, credit, language, sentence):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"], content="v1")
    VersionIngestion.objects.update_or_create(version=doc.live_version, defaults=dict(
        status=IngestionStatus.FAILED, error_code="internal_error",
        error_message="Ingestion failed unexpectedly: KeyError: 'pages'",
    ))
    reader = login(member(credit, Role.EMPLOYEE, "reader"))
    page = reader.get(reverse("knowledge:document", args=[doc.pk]), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert sentence in page
    assert "KeyError" not in page
    editor_page = login(people["credit_manager"]).get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert "KeyError: &#x27;pages&#x27;" in editor_page  # the editors see what went wrong
