"""The notification list after the reader lost access: a notification whose subject they may no
longer read (a stale document's title, a question example, findings of knowledge they no longer
watch) stays in the list, counted, with its content hidden."""

import pytest

from accounts.models import Membership, Role
from chat.models import Conversation, Message, MessageStatus
from chat.models import Role as MessageRole
from health.models import GapGroup, GapQuestion, GapReason, NotificationKind
from health.notifications import notification_send
from tests.factories import KnowledgeBaseFactory, MembershipFactory, published_document

SECRET_TITLE = "Credit restructuring plan"
QUESTION = "How are bad loans written off this quarter?"


@pytest.fixture
def notified(people, credit):
    kb = KnowledgeBaseFactory(department=credit, review_required=False)
    manager = people["credit_manager"]
    doc = published_document(kb, manager, None, content="plan", title=SECRET_TITLE)
    message = Message.objects.create(conversation=Conversation.objects.create(user=people["credit_employee"]),
                                     role=MessageRole.ASSISTANT, status=MessageStatus.NO_KNOWLEDGE, question=QUESTION)
    group = GapGroup.objects.create(model="m")
    GapQuestion.objects.create(message=message, asker=people["credit_employee"], reason=GapReason.NO_KNOWLEDGE,
                               question=QUESTION, asked_at=message.created_at, knowledge_bases=[kb.pk], group=group)
    for kind, event, subject in ((NotificationKind.STALE, f"stale:{doc.pk}", SECRET_TITLE),
                                 (NotificationKind.GAP, f"gap:{group.pk}", QUESTION),
                                 (NotificationKind.CONFLICT, "conflict:1-2-2", ""),
                                 (NotificationKind.CARRY_OVER, "carry_over:1-2-2", "")):
        assert notification_send(user=manager, kind=kind, event=event, subject=subject, url="/health/",
                                 message=f"{kind}: {subject}")
    return manager


def test_a_manager_still_in_the_department_reads_their_notifications(notified, client_for):
    page = client_for(notified).get("/health/notifications/").content.decode()
    assert f"Needs review: {SECRET_TITLE}" in page and f"Unanswered questions like “{QUESTION}”" in page
    assert "New conflicting facts in your knowledge" in page and "data-hidden" not in page


def test_after_leaving_the_department_their_notifications_keep_no_content(notified, hr, client_for):
    Membership.objects.filter(user=notified).delete()
    MembershipFactory(user=notified, department=hr, role=Role.KNOWLEDGE_MANAGER)  # now watches HR's knowledge, not Credit's
    page = client_for(notified).get("/health/notifications/").content.decode()
    assert SECRET_TITLE not in page and QUESTION not in page
    assert page.count("About knowledge you may no longer read") == 2  # the stale document and the question
    assert "New conflicting facts in your knowledge" in page  # no words of any knowledge: HR's conflicts page
    assert "<b data-unread>4</b>" in page  # still counted, and marked read with the others

    Membership.objects.filter(user=notified).delete()  # no knowledge to watch at all
    page = client_for(notified).get("/health/notifications/").content.decode()
    assert page.count("About knowledge you may no longer read") == 4
    assert "New conflicting facts" not in page and "carried over to your documents" not in page
