"""The home page's "Waiting for you": what needs the user's action, counted through the policies
of what it counts, each linking to its page."""

import re

from django.urls import reverse

from health.models import Notification, NotificationKind
from knowledge.services import document_submit, document_version_create, review_request_changes
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document


def _waiting(user) -> dict[str, tuple[int, str]]:
    """label -> (count, link) of the home page's waiting section."""
    html = login(user).get("/").content.decode()
    section = html.split('id="waiting"', 1)[1].split("</section>", 1)[0]
    return {label.strip(): (int(n), url) for url, n, label in
            re.findall(r'<a class="figure" href="([^"]+)"><b>(\d+)</b>([^<]+)</a>', section)}


def test_reviews_to_decide_and_changes_sent_back_reach_the_right_people(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    doc = document(kb, manager, content="Loans above one million need the committee.")
    review = document_submit(actor=manager, document=doc)
    inbox = reverse("knowledge:review_inbox")
    assert _waiting(reviewer) == {"Reviews waiting for your decision": (1, inbox)}
    assert _waiting(people["hr_manager"]) == {}  # another department's review waits for no one there
    assert "Nothing is waiting for you." in login(people["hr_employee"]).get("/").content.decode()

    review_request_changes(actor=reviewer, review=review, comment="Name the committee.")
    assert _waiting(reviewer) == {}
    assert _waiting(manager)["Your changes sent back for rework"] == (1, inbox)
    # Reworked: the new version is what counts now, so nothing is sent back any more.
    document_version_create(actor=manager, document=doc, content="Loans above one million need the credit committee.",
                            base_version_number=1)
    assert "Your changes sent back for rework" not in _waiting(manager)


def test_unread_notifications_count_for_their_reader_only(people, credit):
    for n in range(2):
        Notification.objects.create(user=people["credit_manager"], kind=NotificationKind.STALE, event=f"e{n}",
                                    period="2026-12", message="A document is stale.")
    assert _waiting(people["credit_manager"])["Unread notifications"] == (2, reverse("health:notifications"))
    assert "Unread notifications" not in _waiting(people["credit_reviewer"])


def test_the_section_speaks_chinese(people, credit):
    client = login(people["credit_employee"])
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "等待您处理" in html and "没有等待您处理的事项。" in html


def test_documents_past_their_review_by_date_wait_for_their_departments_watchers(people, credit):
    import datetime as dt

    from knowledge.models import Document
    from tests.factories import published_document

    kb = KnowledgeBaseFactory(department=credit)
    doc = published_document(kb, people["credit_manager"], people["credit_reviewer"])
    assert "Past their review-by date" not in _waiting(people["credit_manager"])
    Document.objects.filter(pk=doc.pk).update(review_by=dt.date.today() - dt.timedelta(days=1))
    assert _waiting(people["credit_manager"])["Past their review-by date"] == (1, reverse("health:stale"))
    assert _waiting(people["credit_reviewer"])["Past their review-by date"][0] == 1
    assert "Past their review-by date" not in _waiting(people["hr_manager"])
    assert _waiting(people["credit_employee"]) == {}  # employees do not watch knowledge health
