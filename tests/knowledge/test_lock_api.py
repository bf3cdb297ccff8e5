"""Edit locks through the API: an integration that edits documents takes the lock, keeps it alive
and releases it like the editor page does; others see who holds it and are refused while it lives."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import Role
from core.models import AuditEntry
from knowledge.models import DocumentState, EditLock
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document, member


def post(client, url, data=None):
    return client.post(url, data if data is not None else {}, content_type="application/json")


def test_an_integration_takes_keeps_and_releases_the_lock(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    doc = document(kb, people["credit_manager"], title="Loan policy", content="v1")
    url = f"/api/documents/{doc.pk}/lock/"
    first, second = login(people["credit_manager"]), login(member(credit, Role.KNOWLEDGE_MANAGER, "second_manager"))
    assert first.get(url).json()["locked"] is False

    taken = post(first, url)
    assert taken.status_code == 200
    data = taken.json()
    assert (data["locked"], data["owner"], data["yours"], data["expired"]) == (True, "credit_manager", True, False)
    # The holder edits; another editor sees who holds it and is refused both the lock and the edit.
    assert post(first, f"/api/documents/{doc.pk}/versions/", {"content": "v2", "base_version": 1}).status_code == 201
    seen = second.get(url).json()
    assert (seen["owner"], seen["yours"]) == ("credit_manager", False)
    refused = post(second, url)
    assert refused.status_code == 409 and refused.json()["code"] == "edit_locked"
    assert refused.json()["lock_owner"] == "credit_manager"
    assert post(second, f"/api/documents/{doc.pk}/versions/", {"content": "v3", "base_version": 2}).status_code == 409
    # A plain reader does not see a draft at all; a reviewer sees the lock (as on the page) but may not take it.
    assert login(people["credit_employee"]).get(url).status_code == 404
    reviewer = login(people["credit_reviewer"])
    assert reviewer.get(url).json()["owner"] == "credit_manager"
    assert post(reviewer, url).status_code == 403

    # A heartbeat moves the expiry; releasing frees it; releasing again changes nothing.
    EditLock.objects.filter(document=doc).update(refreshed_at=timezone.now() - timedelta(seconds=30))
    before = EditLock.objects.get(document=doc).refreshed_at
    assert post(first, url).status_code == 200 and EditLock.objects.get(document=doc).refreshed_at > before
    assert post(second, url + "release/").json()["owner"] == "credit_manager"  # not theirs to release
    assert post(first, url + "release/").json()["locked"] is False
    assert post(first, url + "release/").status_code == 200
    assert post(second, url).json()["yours"] is True


def test_an_abandoned_lock_is_taken_over_and_a_live_one_broken_by_an_admin(people, credit, settings):
    kb = KnowledgeBaseFactory(department=credit)
    doc = document(kb, people["credit_manager"], title="Loan policy", content="v1")
    url = f"/api/documents/{doc.pk}/lock/"
    post(login(people["credit_manager"]), url)
    second = login(member(credit, Role.KNOWLEDGE_MANAGER, "second_manager"))
    # Expired: the next editor takes it over, audited.
    EditLock.objects.filter(document=doc).update(
        refreshed_at=timezone.now() - timedelta(seconds=settings.EDIT_LOCK_TTL_SECONDS + 5))
    assert login(people["credit_manager"]).get(url).json()["expired"] is True
    assert post(second, url).json()["owner"] == "second_manager"
    assert AuditEntry.objects.filter(action="edit_lock_takeover", object_id=str(doc.pk)).exists()
    # Live: a manager may not break it, the department's admin may (audited).
    assert post(login(people["credit_manager"]), url + "break/").status_code == 403
    broken = post(login(people["credit_admin"]), url + "break/")
    assert broken.status_code == 200 and broken.json()["locked"] is False
    assert AuditEntry.objects.get(action="edit_lock_break").details["lock_owner"] == "second_manager"
    # Another department: as if the document did not exist; an archived document takes no lock.
    for path in ("", "release/", "break/"):
        assert post(login(people["hr_manager"]), url + path).status_code == 404
    assert login(people["hr_manager"]).get(url).status_code == 404
    doc.state = DocumentState.ARCHIVED
    doc.save(update_fields=["state"])
    assert post(second, url).status_code in (404, 409)
    # These actions take no body.
    assert post(second, url + "release/", {"x": 1}).status_code == 400


def test_a_reader_of_a_published_document_is_not_told_who_edits_it(people, credit):
    from tests.factories import published_document

    kb = KnowledgeBaseFactory(department=credit)
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"], title="Loan policy")
    url = f"/api/documents/{doc.pk}/lock/"
    assert post(login(people["credit_manager"]), url).status_code == 200
    reader = login(people["credit_employee"])
    assert reader.get(f"/api/documents/{doc.pk}/").status_code == 200  # the document, yes
    for response in (reader.get(url), post(reader, url), post(reader, url + "release/"), post(reader, url + "break/")):
        assert response.status_code == 404 and "credit_manager" not in response.content.decode()
    assert EditLock.objects.get(document=doc).owner == people["credit_manager"]
