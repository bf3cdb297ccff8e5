"""Four eyes: who submitted a change may not approve it, company admins included, unless the
knowledge base allows self-approval for a role they hold; the approve audit row names the rule."""

from django.urls import reverse

from core.audit import AuditAction
from core.models import AuditEntry
from knowledge.models import Document, DocumentState, KnowledgeBase, ReviewState
from tests.conftest import login


def _submit_new_document(client, kb, title):
    response = client.post(
        reverse("knowledge:document_create", args=[kb.pk]), {"title": title, "content": "Loans need two signatures."}
    )
    assert response.status_code == 302
    document = Document.objects.get(title=title)
    assert client.post(reverse("knowledge:document_submit", args=[document.pk])).status_code == 302
    return document, document.reviews.get(state=ReviewState.OPEN)


def _create_knowledge_base(client, credit, name, **fields):
    response = client.post(
        reverse("knowledge:knowledge_base_create"),
        {"name": name, "department": credit.pk, "review_required": "on", **fields},
    )
    assert response.status_code == 302, response.content.decode()[:800]
    return KnowledgeBase.objects.get(name=name)


def test_an_admin_may_not_approve_their_own_change_another_reviewer_may(credit, people):
    admin = login(people["superuser"])
    kb = _create_knowledge_base(admin, credit, "Lending")
    assert kb.self_approval_role == ""
    document, review = _submit_new_document(admin, kb, "Own change")

    page = admin.post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "mine"})

    assert page.status_code == 400
    assert "another reviewer must approve it" in page.content.decode()
    review.refresh_from_db()
    document.refresh_from_db()
    assert review.state == ReviewState.OPEN and document.live_version_id is None
    assert not AuditEntry.objects.filter(action=AuditAction.APPROVE).exists()

    other = login(people["reviewer"])
    assert other.post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "ok"}).status_code == 302
    document.refresh_from_db()
    assert document.state == DocumentState.PUBLISHED
    approve = AuditEntry.objects.get(action=AuditAction.APPROVE)
    assert approve.actor_username == "reviewer" and approve.details["four_eyes_rule"] == "another_reviewer"


def test_a_knowledge_base_may_allow_self_approval_for_a_named_role(credit, people):
    admin = login(people["superuser"])
    kb = _create_knowledge_base(admin, credit, "Fast lane", self_approval_role="admin")
    document, review = _submit_new_document(admin, kb, "Urgent fix")

    assert admin.post(reverse("knowledge:review_approve", args=[review.pk]), {"comment": "urgent"}).status_code == 302

    document.refresh_from_db()
    assert document.state == DocumentState.PUBLISHED
    approve = AuditEntry.objects.get(action=AuditAction.APPROVE)
    assert approve.details["four_eyes_rule"] == "self_approval_allowed_for_role"
    assert approve.details["self_approval_role"] == "admin"
    created = AuditEntry.objects.get(action=AuditAction.CREATE, object_id=str(kb.pk), content_type__model="knowledgebase")
    assert created.details["self_approval_role"] == "admin"
    # The role is named: a reviewer role would not have let the admin through.
    KnowledgeBase.objects.filter(pk=kb.pk).update(self_approval_role="compliance_reviewer")
    _document, second = _submit_new_document(admin, kb, "Another fix")
    assert admin.post(reverse("knowledge:review_approve", args=[second.pk]), {"comment": "again"}).status_code == 400
