"""Every health list and figure is scoped by permission, the cross-department pair included."""

import pytest

from health.models import CarryOver, Conflict, FindingStatus
from tests.factories import KnowledgeBaseFactory

from .helpers import live_document, new_version, run_health_jobs


@pytest.fixture
def findings(people, credit, hr, django_capture_on_commit_callbacks):
    credit_kb = KnowledgeBaseFactory(department=credit, review_required=False)
    hr_kb = KnowledgeBaseFactory(department=hr, review_required=False)
    with django_capture_on_commit_callbacks(execute=True):
        credit_doc = live_document(credit_kb, people["credit_manager"], "个人贷款利率为4.35%。信贷秘密条款。", title="Credit policy")
    run_health_jobs()
    with django_capture_on_commit_callbacks(execute=True):
        hr_doc = live_document(hr_kb, people["hr_manager"], "HR secret memo. The personal loan interest rate is 3.85%.", title="HR memo")
    run_health_jobs()
    with django_capture_on_commit_callbacks(execute=True):
        faq = live_document(credit_kb, people["credit_manager"], "Q: What is the annual leave?\nA: 10 days. The training deadline is 2025-06-30.", title="FAQ")
        hr_rule = live_document(hr_kb, people["hr_manager"], "年假为10天。", title="HR leave rule")
    run_health_jobs()
    with django_capture_on_commit_callbacks(execute=True):
        new_version(hr_rule, people["hr_manager"], "年假为15天。")
    run_health_jobs()
    return {"credit_doc": credit_doc, "hr_doc": hr_doc, "faq": faq, "hr_rule": hr_rule}


def test_a_cross_department_pair_shows_each_side_only_its_own_text(findings, people, client_for):
    assert Conflict.objects.filter(status=FindingStatus.OPEN).count() == 1
    credit_page = client_for(people["credit_manager"]).get("/health/conflicts/").content.decode()
    assert "信贷秘密条款" in credit_page and "4.35%" in credit_page
    assert "HR secret memo" not in credit_page and "HR memo" not in credit_page
    assert "Conflicts with a document of another department; ask its owner." in credit_page
    hr_page = client_for(people["hr_manager"]).get("/health/conflicts/").content.decode()
    assert "HR secret memo" in hr_page and "<mark>3.85%</mark>" in hr_page
    assert "信贷秘密条款" not in hr_page and "Credit policy" not in hr_page
    # a reviewer covering every department reads both sides
    reviewer_page = client_for(people["reviewer"]).get("/health/conflicts/").content.decode()
    assert "信贷秘密条款" in reviewer_page and "HR secret memo" in reviewer_page


def finding_html(page: str) -> str:
    start = page.index('<div class="finding"')
    return page[start:page.index("</form>", start)]


def test_the_side_a_user_may_not_read_shows_no_value(findings, people, client_for):
    """Each side's managers see the pair without the other side's words, its value included."""
    credit_page = client_for(people["credit_manager"]).get("/health/conflicts/").content.decode()
    assert "<mark>4.35</mark> and another value in knowledge you may not read" in credit_page
    assert "3.85" not in credit_page
    hr_page = client_for(people["hr_manager"]).get("/health/conflicts/").content.decode()
    assert "<mark>3.85</mark> and another value in knowledge you may not read" in hr_page
    assert "4.35" not in hr_page
    reviewer_page = client_for(people["reviewer"]).get("/health/conflicts/").content.decode()
    assert "<mark>4.35</mark>" in reviewer_page and "<mark>3.85</mark>" in reviewer_page
    # The change not carried over: its new value (15) is HR's words; Credit sees its own old one.
    carried = finding_html(client_for(people["credit_manager"]).get("/health/carried-over/").content.decode())
    assert "<mark>10</mark> (the new value is in knowledge you may not read)" in carried
    assert "15" not in carried


def test_employees_and_outsiders_see_no_health_page(findings, people, client_for):
    for name in ("credit_employee", "hr_employee", "outsider"):
        client = client_for(people[name])
        for url in ("/health/", "/health/conflicts/", "/health/carried-over/"):
            assert client.get(url).status_code == 403
        assert 'data-nav="health"' not in client.get("/").content.decode()
    assert 'data-nav="health"' in client_for(people["credit_manager"]).get("/").content.decode()


def test_carried_over_findings_reach_the_owners_of_the_stale_passage(findings, people, client_for):
    row = CarryOver.objects.get()
    assert row.document_id == findings["faq"].pk and (row.old_value, row.new_value) == ("10", "15")
    credit_page = client_for(people["credit_manager"]).get("/health/carried-over/").content.decode()
    assert "<mark>10 days</mark>" in credit_page
    assert "changed in a document of another department" in credit_page and "HR leave rule" not in credit_page
    hr_page = client_for(people["hr_manager"]).get("/health/carried-over/").content.decode()
    assert "Nothing found." in hr_page


def test_figures_count_only_the_users_departments(findings, people, client_for):
    from health.selectors import overview

    credit = overview(user=people["credit_manager"])
    hr = overview(user=people["hr_manager"])
    assert credit["open_conflicts"] == 1 and hr["open_conflicts"] == 1
    assert credit["open_carry_overs"] == 1 and hr["open_carry_overs"] == 0
    assert dict(credit["documents_by_state"])["Published"] == 2
    assert dict(hr["documents_by_state"])["Published"] == 2
    page = client_for(people["credit_manager"]).get("/health/")
    assert page.status_code == 200
    assert 'data-figure="open_carry_overs"><b>1</b>' in page.content.decode()


def test_dismissing_from_the_page_needs_a_reason_and_the_right(findings, people, client_for):
    conflict = Conflict.objects.get()
    hr_employee = client_for(people["hr_employee"])
    assert hr_employee.post(f"/health/conflicts/{conflict.pk}/dismiss/", {"reason": "x"}).status_code == 403
    manager = client_for(people["credit_manager"])
    manager.post(f"/health/conflicts/{conflict.pk}/dismiss/", {"reason": ""})
    assert Conflict.objects.get().status == FindingStatus.OPEN
    manager.post(f"/health/conflicts/{conflict.pk}/dismiss/", {"reason": "HR quotes an old offer"})
    assert Conflict.objects.get().status == FindingStatus.DISMISSED
    carry = CarryOver.objects.get()
    # the HR manager owns the change, not the stale passage: not found for them
    assert client_for(people["hr_manager"]).post(f"/health/carried-over/{carry.pk}/dismiss/", {"reason": "x"}).status_code == 404
    assert CarryOver.objects.get().status == FindingStatus.OPEN


def test_a_dismissal_is_audited_for_each_sides_department_naming_its_own_document(findings, people, credit, hr,
                                                                                   client_for):
    from accounts.models import Role
    from core.models import AuditEntry
    from knowledge.selectors import audit_list
    from tests.factories import MembershipFactory

    conflict = Conflict.objects.get()
    hr_auditor = MembershipFactory(department=hr, role=Role.COMPLIANCE_REVIEWER).user
    credit_auditor = people["credit_reviewer"]
    # Side B's (HR's) manager dismisses: HR's reviewers see the decision in their audit trail.
    assert conflict.document_b_id == findings["hr_doc"].pk
    client_for(people["hr_manager"]).post(f"/health/conflicts/{conflict.pk}/dismiss/", {"reason": "HR quotes a staff rate"})
    assert Conflict.objects.get().status == FindingStatus.DISMISSED
    entries = AuditEntry.objects.filter(action="health_conflict_dismiss")
    assert {(e.department_id, tuple(e.details["documents"])) for e in entries} == {
        (hr.pk, (findings["hr_doc"].pk,)), (credit.pk, (findings["credit_doc"].pk,))}
    for auditor, own in ((hr_auditor, findings["hr_doc"]), (credit_auditor, findings["credit_doc"])):
        (entry,) = audit_list(user=auditor, action="health_conflict_dismiss")
        assert entry.details == {"reason": "HR quotes a staff rate", "documents": [own.pk]}


def test_a_manager_starts_the_full_scan_and_follows_its_progress(findings, people, client_for):
    client = client_for(people["credit_manager"])
    response = client.post("/health/conflicts/scan/")
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    assert client.get(response["Location"]).status_code == 200
