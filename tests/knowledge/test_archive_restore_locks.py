"""Issue 12: nothing destroyed by one click (archive with a reason, restore through review) and
edit locks that cannot wedge (expiry, heartbeat, take-over), on pages, the API and the database."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from core.models import AuditEntry
from knowledge import services
from knowledge.models import Chunk, Document, DocumentState, EditLock, Review, ReviewState
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document, member, published_document


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, name="Credit rules")


def _post_json(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


# --- archive -------------------------------------------------------------------------------------


def test_archive_button_opens_a_confirmation_and_a_published_document_needs_a_reason(kb, people):
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    doc = published_document(kb, manager, reviewer, title="Loan policy")
    client = login(manager)
    page = client.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    # the Archive action is a link to a confirmation page, not a one-click POST
    assert f'href="{reverse("knowledge:document_archive", args=[doc.pk])}"' in page
    confirm = client.get(reverse("knowledge:document_archive", args=[doc.pk]))
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    assert Document.objects.get(pk=doc.pk).state == DocumentState.PUBLISHED

    refused = client.post(reverse("knowledge:document_archive", args=[doc.pk]), {"reason": "  "})
    assert refused.status_code == 400
    assert "Say why this published document is archived." in refused.content.decode()
    assert Document.objects.get(pk=doc.pk).state == DocumentState.PUBLISHED

    done = client.post(reverse("knowledge:document_archive", args=[doc.pk]), {"reason": "Replaced by the 2027 rules"})
    assert done.status_code == 302
    assert Document.objects.get(pk=doc.pk).state == DocumentState.ARCHIVED
    entry = AuditEntry.objects.filter(action="archive", object_id=str(doc.pk)).get()
    assert entry.details["reason"] == "Replaced by the 2027 rules" and entry.actor == manager


def test_archive_over_the_api_needs_a_reason_for_a_published_document(kb, people):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    client = login(people["credit_manager"])
    refused = _post_json(client, f"/api/documents/{doc.pk}/archive/")
    assert refused.status_code == 400 and "reason" in refused.json()
    assert Document.objects.get(pk=doc.pk).state == DocumentState.PUBLISHED
    # a draft that never went live may be archived without one
    draft = document(kb, people["credit_manager"])
    assert _post_json(client, f"/api/documents/{draft.pk}/archive/").status_code == 200


def test_restore_goes_through_review_when_the_knowledge_base_requires_it(kb, people):
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    doc = published_document(kb, manager, reviewer, content="# Rates\n\nThe rate is 4.35 percent.\n")
    services.document_archive(actor=manager, document=doc, reason="Obsolete")
    assert not Chunk.objects.filter(document=doc, searchable=True).exists()

    client = login(manager)
    page = client.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert 'data-action="restore"' in page
    response = client.post(reverse("knowledge:document_restore", args=[doc.pk]), {"reason": "Still in force"})
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.state == DocumentState.IN_REVIEW
    review = Review.objects.get(document=doc, state=ReviewState.OPEN)
    assert AuditEntry.objects.filter(action="restore", object_id=str(doc.pk)).get().details["reason"] == "Still in force"
    # readers do not see it again until a reviewer approves
    assert login(people["credit_employee"]).get(reverse("knowledge:document", args=[doc.pk])).status_code == 404
    services.review_approve(actor=reviewer, review=review)
    doc.refresh_from_db()
    assert doc.state == DocumentState.PUBLISHED
    assert login(people["credit_employee"]).get(reverse("knowledge:document", args=[doc.pk])).status_code == 200


def test_restore_over_the_api_publishes_at_once_without_review(credit, people):
    kb = KnowledgeBaseFactory(department=credit, name="No review", review_required=False)
    manager = people["credit_manager"]
    doc = document(kb, manager)
    services.document_submit(actor=manager, document=doc)
    services.document_archive(actor=manager, document=doc, reason="x")
    client = login(manager)
    assert _post_json(client, f"/api/documents/{doc.pk}/restore/").status_code == 204
    assert client.get(f"/api/documents/{doc.pk}/").json()["state"] == "published"
    assert _post_json(client, f"/api/documents/{doc.pk}/restore/").json()["code"] == "not_archived"


def test_nobody_else_may_see_or_restore_an_archived_document(kb, people):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    services.document_archive(actor=people["credit_manager"], document=doc, reason="x")
    for who in ("credit_employee", "hr_manager", "hr_employee"):
        client = login(people[who])
        assert client.post(reverse("knowledge:document_restore", args=[doc.pk])).status_code == 404, who
        assert _post_json(client, f"/api/documents/{doc.pk}/restore/").status_code == 404, who
        assert client.get(reverse("knowledge:document_archive", args=[doc.pk])).status_code == 404, who
    # the reviewer sees it but may not restore it
    assert _post_json(login(people["credit_reviewer"]), f"/api/documents/{doc.pk}/restore/").status_code == 403
    assert Document.objects.get(pk=doc.pk).state == DocumentState.ARCHIVED


# --- edit locks ------------------------------------------------------------------------------------


def _expire(lock: EditLock, settings) -> None:
    EditLock.objects.filter(pk=lock.pk).update(
        refreshed_at=timezone.now() - timedelta(seconds=settings.EDIT_LOCK_TTL_SECONDS + 1)
    )


def test_an_expired_lock_no_longer_blocks_saving_and_a_manager_takes_it_over(kb, people, credit, settings):
    manager = people["credit_manager"]
    other = member(credit, Role.KNOWLEDGE_MANAGER, "gone_home")
    doc = document(kb, manager)
    lock = services.edit_lock_acquire(actor=other, document=doc)
    client = login(manager)
    # live: the page names the editor and offers no take-over
    page = client.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert "gone_home is editing" in page and 'data-action="take-over-lock"' not in page
    assert client.post(reverse("knowledge:edit_lock_take_over", args=[doc.pk])).status_code == 302
    assert EditLock.objects.get(document=doc).owner == other

    _expire(lock, settings)
    page = client.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert "the lock has expired" in page and 'data-action="take-over-lock"' in page
    response = client.post(reverse("knowledge:edit_lock_take_over", args=[doc.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("knowledge:document_edit", args=[doc.pk])
    assert EditLock.objects.get(document=doc).owner == manager
    entry = AuditEntry.objects.get(action="edit_lock_takeover", object_id=str(doc.pk))
    assert entry.actor == manager and entry.details["lock_owner"] == "gone_home"


def test_saving_over_an_expired_lock_works(kb, people, credit, settings):
    manager = people["credit_manager"]
    other = member(credit, Role.KNOWLEDGE_MANAGER, "gone_home")
    doc = document(kb, manager)
    _expire(services.edit_lock_acquire(actor=other, document=doc), settings)
    version = services.document_version_create(actor=manager, document=doc, content="v2", base_version_number=1)
    assert version.number == 2


def test_the_editor_heartbeat_keeps_the_lock_alive(kb, people, settings):
    manager = people["credit_manager"]
    doc = document(kb, manager)
    client = login(manager)
    editor = client.get(reverse("knowledge:document_edit", args=[doc.pk])).content.decode()
    heartbeat = reverse("knowledge:edit_lock_heartbeat", args=[doc.pk])
    assert f'hx-post="{heartbeat}"' in editor and "every 60s" in editor
    lock = EditLock.objects.get(document=doc)
    _expire(lock, settings)
    assert EditLock.objects.get(pk=lock.pk).is_expired
    assert client.post(heartbeat).status_code == 200
    assert not EditLock.objects.get(pk=lock.pk).is_expired


def test_lock_heartbeat_and_take_over_are_404_to_other_departments_and_readers_see_no_name(
    kb, people, credit, settings
):
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    editor = member(credit, Role.KNOWLEDGE_MANAGER, "gone_home")
    _expire(services.edit_lock_acquire(actor=editor, document=doc), settings)
    for who in ("hr_manager", "hr_employee"):
        client = login(people[who])
        assert client.post(reverse("knowledge:edit_lock_take_over", args=[doc.pk])).status_code == 404
        assert client.post(reverse("knowledge:edit_lock_heartbeat", args=[doc.pk])).status_code == 404
    reader = login(people["credit_employee"])
    assert reader.post(reverse("knowledge:edit_lock_take_over", args=[doc.pk])).status_code == 403
    assert "gone_home" not in reader.get(reverse("knowledge:document", args=[doc.pk])).content.decode()
    assert "gone_home" not in reader.get(reverse("knowledge:edit_lock", args=[doc.pk])).content.decode()
    assert "gone_home" in login(people["credit_manager"]).get(reverse("knowledge:edit_lock", args=[doc.pk])).content.decode()
    assert EditLock.objects.get(document=doc).owner == editor
