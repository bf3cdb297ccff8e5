"""Conflicts and changes not carried over, found when versions go live and by the full scan."""

import re

import pytest
from django.core.exceptions import ValidationError

from core.models import AuditEntry, Job
from core.services import job_execute
from health.models import CarryOver, Conflict, Fact, FindingStatus
from health.services import carry_over_dismiss, conflict_dismiss, conflict_scan_start
from tests.factories import KnowledgeBaseFactory

from .helpers import live_document, new_version, run_health_jobs


@pytest.fixture
def credit_kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


@pytest.fixture
def hr_kb(hr):
    return KnowledgeBaseFactory(department=hr, review_required=False)


@pytest.fixture
def publish_now(django_capture_on_commit_callbacks):
    """Publish and run the health check the publish step queued."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            doc = fn(*args, **kwargs)
        run_health_jobs()
        return doc

    return run


def test_publishing_a_different_rate_lists_a_conflict_with_both_passages(people, credit_kb, publish_now):
    manager = people["credit_manager"]
    policy = publish_now(live_document, credit_kb, manager, "# 贷款政策\n\n个人贷款利率为4.35%。", title="Policy")
    assert Fact.objects.filter(document=policy, value="4.35").exists()
    faq = publish_now(live_document, credit_kb, manager, "# FAQ\n\nThe personal loan interest rate is 3.85 percent.", title="FAQ")
    (conflict,) = Conflict.objects.all()
    assert {conflict.document_a_id, conflict.document_b_id} == {policy.pk, faq.pk}
    assert {conflict.value_a, conflict.value_b} == {"4.35", "3.85"}
    assert conflict.status == FindingStatus.OPEN


def test_the_same_fact_in_another_unit_or_script_is_not_a_conflict(people, credit_kb, publish_now):
    manager = people["credit_manager"]
    publish_now(live_document, credit_kb, manager, "報銷上限為5萬元。")
    publish_now(live_document, credit_kb, manager, "The reimbursement limit is 50,000 元.")
    publish_now(live_document, credit_kb, manager, "其他城市住宿上限每晚500元。")
    publish_now(live_document, credit_kb, manager, "The hotel cap for first-tier cities is 800 yuan per night.")
    assert Fact.objects.count() == 4
    assert not Conflict.objects.exists()


def test_a_changed_value_lists_the_passages_still_stating_the_old_one_and_only_those(people, credit_kb, hr_kb, publish_now):
    manager = people["credit_manager"]
    policy = publish_now(live_document, credit_kb, manager, "个人贷款利率为4.35%。违约金上限为5万元。", title="Policy")
    faq = publish_now(live_document, credit_kb, manager, "Q: What is the personal loan interest rate?\nA: 4.35%.", title="FAQ")
    other_subject = publish_now(live_document, credit_kb, manager, "The mortgage interest rate is 4.35%.", title="Mortgage")
    hr_copy = publish_now(live_document, hr_kb, people["hr_manager"], "個人貸款利率為4.35%。", title="HR copy")
    unchanged = publish_now(live_document, credit_kb, manager, "The penalty cap is 50,000 yuan.", title="Penalty")
    assert not Conflict.objects.exists()

    publish_now(new_version, policy, manager, "个人贷款利率为3.85%。违约金上限为5万元。")
    policy.refresh_from_db()
    rows = CarryOver.objects.all()
    assert {row.document_id for row in rows} == {faq.pk, hr_copy.pk}
    assert {(row.old_value, row.new_value) for row in rows} == {("4.35", "3.85")}
    assert {row.change_version_id for row in rows} == {policy.live_version_id}
    assert other_subject.pk not in {row.document_id for row in rows} and unchanged.pk not in {row.document_id for row in rows}
    # listed as "may still state the old value", not a second time as conflicts
    assert not Conflict.objects.exists()

    # The FAQ is fixed: its finding is resolved by the change.
    publish_now(new_version, faq, manager, "Q: What is the personal loan interest rate?\nA: 3.85%.")
    assert CarryOver.objects.get(document=faq).status == FindingStatus.RESOLVED
    assert CarryOver.objects.get(document=hr_copy).status == FindingStatus.OPEN


def test_a_dismissed_pair_stays_dismissed_until_one_side_changes(people, credit_kb, publish_now):
    manager = people["credit_manager"]
    a = publish_now(live_document, credit_kb, manager, "试用期为三个月。")
    publish_now(live_document, credit_kb, manager, "Probation lasts 6 months.")
    conflict = Conflict.objects.get()
    with pytest.raises(ValidationError):
        conflict_dismiss(actor=manager, conflict=conflict, reason="  ")
    assert Conflict.objects.get().status == FindingStatus.OPEN
    conflict_dismiss(actor=manager, conflict=conflict, reason="Different grades of staff")
    assert AuditEntry.objects.filter(action="health_conflict_dismiss", details__reason="Different grades of staff").exists()

    job = conflict_scan_start(actor=manager)
    job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.progress == 1.0
    assert list(Conflict.objects.values_list("status", flat=True)) == [FindingStatus.DISMISSED]

    publish_now(new_version, a, manager, "试用期为两个月。")
    statuses = sorted(Conflict.objects.values_list("status", flat=True))
    assert statuses == [FindingStatus.DISMISSED, FindingStatus.OPEN]


def test_the_full_scan_finds_what_publishing_found(people, credit_kb, hr_kb, publish_now):
    publish_now(live_document, credit_kb, people["credit_manager"], "The personal loan interest rate is 4.35%.")
    publish_now(live_document, hr_kb, people["hr_manager"], "個人貸款利率為3.85%。")
    before = set(Conflict.objects.values_list("chunk_a_id", "chunk_b_id", "key"))
    assert len(before) == 1
    Conflict.objects.all().delete()
    Fact.objects.all().delete()
    job = conflict_scan_start(actor=people["hr_manager"])
    job_execute(job_id=job.pk)
    assert set(Conflict.objects.values_list("chunk_a_id", "chunk_b_id", "key")) == before
    assert Job.objects.get(pk=job.pk).result == {"open_conflicts": 1}  # the pair has an HR side


def test_a_managers_full_scan_states_no_figure_of_other_departments(people, credit, hr_kb, publish_now, monkeypatch):
    """The scan reads every department's passages; the job row its starter reads (/jobs/<id>/,
    /api/jobs/<id>/) states neither their number nor the conflicts of knowledge they may not see."""
    import core.services
    import health.services
    from django.test import Client

    for i in range(3):
        publish_now(live_document, hr_kb, people["hr_manager"], f"HR secret {i}: the staff loan interest rate is 3.{i}5%.")
    assert Conflict.objects.count() == 3
    monkeypatch.setattr(health.services, "BATCH", 1)  # a progress step per passage
    written = []
    original = core.services.job_progress
    monkeypatch.setattr(core.services, "job_progress",
                        lambda *, job, fraction, message="": written.append((fraction, message)) or original(
                            job=job, fraction=fraction, message=message))
    client = Client()
    client.force_login(people["credit_manager"])  # Credit has no knowledge at all
    assert client.post("/health/conflicts/scan/").status_code == 302
    job = Job.objects.get(kind="health_conflict_scan")
    assert job.created_by == people["credit_manager"]
    job_execute(job_id=job.pk)

    assert Fact.objects.count() == 3 and Conflict.objects.count() == 3  # the scan covered HR's knowledge
    body = client.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["result"] == {"open_conflicts": 0}
    assert written and all(message == "" and fraction in (0.0, 1.0) for fraction, message in written), written
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    # No "x/3" progress (a job's UUID in a link may hold "/3", so the pattern is digits on both sides).
    assert "open_conflicts" in page and "passages" not in page and not re.search(r"\b\d+/3\b", page)


def test_only_managers_may_dismiss_and_start_scans(people, credit_kb, publish_now):
    from django.core.exceptions import PermissionDenied

    manager = people["credit_manager"]
    publish_now(live_document, credit_kb, manager, "个人贷款利率为4.35%。")
    publish_now(live_document, credit_kb, manager, "Personal loan interest rate: 3.85%.")
    conflict = Conflict.objects.get()
    for user in (people["credit_employee"], people["hr_manager"], people["credit_reviewer"]):
        with pytest.raises(PermissionDenied):
            conflict_dismiss(actor=user, conflict=conflict, reason="no")
    with pytest.raises(PermissionDenied):
        conflict_scan_start(actor=people["credit_employee"])
    assert Conflict.objects.get().status == FindingStatus.OPEN
    carry = CarryOver.objects.none()
    assert not carry.exists()
