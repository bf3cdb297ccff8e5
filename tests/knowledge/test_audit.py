import pytest
from django.core.files.base import ContentFile
from django.test import Client

from accounts.models import Role
from core.audit import AuditAction
from core.models import AuditEntry
from knowledge import selectors, services
from tests.factories import KnowledgeBaseFactory, member


def rows_since(mark: int):
    return list(AuditEntry.objects.filter(pk__gt=mark).order_by("pk"))


def last_pk() -> int:
    last = AuditEntry.objects.order_by("-pk").first()
    return last.pk if last else 0


def test_one_audit_row_per_action_with_actor_version_department_and_ip(people, credit, hr, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    manager, reviewer = people["credit_manager"], people["credit_reviewer"]
    ip = "10.1.2.3"
    steps = []

    def step(expected_actions, call):
        mark = last_pk()
        result = call()
        rows = rows_since(mark)
        steps.append(([r.action for r in rows], expected_actions))
        return result, rows

    kb, rows = step(
        ["create"], lambda: services.knowledge_base_create(actor=manager, department=credit, name="KB", ip=ip)
    )
    _, rows = step(
        ["permission_change"],
        lambda: services.knowledge_base_update(actor=manager, knowledge_base=kb, shared_with=[hr], ip=ip),
    )
    assert rows[0].details["shared_with"] == {"added": ["hr"], "removed": []}
    doc, rows = step(
        ["create"],
        lambda: services.document_create(
            actor=manager, knowledge_base=kb, title="Rates", content="3%", ip=ip,
            original_file=ContentFile(b"3%", name="rates.txt"),
        ),
    )
    assert rows[0].version.number == 1
    review, _ = step(["submit"], lambda: services.document_submit(actor=manager, document=doc, ip=ip))
    _, rows = step(
        ["request_changes"],
        lambda: services.review_request_changes(actor=reviewer, review=review, comment="why?", ip=ip),
    )
    assert rows[0].details["comment"] == "why?"
    _, rows = step(
        ["edit"],
        lambda: services.document_version_create(
            actor=manager, document=doc, content="4%", base_version_number=1, ip=ip
        ),
    )
    assert rows[0].version.number == 2
    review, _ = step(["submit"], lambda: services.document_submit(actor=manager, document=doc, ip=ip))
    _, rows = step(["approve", "publish"], lambda: services.review_approve(actor=reviewer, review=review, ip=ip))
    assert {r.version.number for r in rows} == {2}
    _, rows = step(
        ["rollback", "submit"], lambda: services.document_rollback(actor=manager, document=doc, to_number=1, ip=ip)
    )
    assert rows[0].details["rolled_back_to"] == 1 and rows[0].version.number == 3
    version = doc.versions.get(number=1)
    handle, rows = step(["download"], lambda: services.version_file_open(actor=reviewer, version=version, ip=ip))
    assert handle.read() == b"3%"
    handle.close()
    assert rows[0].version == version and rows[0].actor == reviewer
    _, rows = step(["archive"], lambda: services.document_archive(reason="superseded", actor=manager, document=doc, ip=ip))

    for seen, expected in steps:
        assert seen == expected
    all_rows = AuditEntry.objects.filter(department=credit)
    assert {r.ip for r in all_rows} == {ip}
    assert {r.action for r in all_rows} >= {
        AuditAction.CREATE, AuditAction.EDIT, AuditAction.SUBMIT, AuditAction.APPROVE, AuditAction.REQUEST_CHANGES,
        AuditAction.PUBLISH, AuditAction.ROLLBACK, AuditAction.ARCHIVE, AuditAction.PERMISSION_CHANGE,
        AuditAction.DOWNLOAD,
    }
    assert all(r.actor_id in {manager.pk, reviewer.pk} for r in all_rows)


def test_metadata_only_updates_without_changes_write_no_row(people, credit):
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit)
    doc = services.document_create(actor=manager, knowledge_base=kb, title="Same", content="x")
    mark = last_pk()
    services.document_update_metadata(actor=manager, document=doc, title="Same")
    services.knowledge_base_update(actor=manager, knowledge_base=kb, name=kb.name)
    assert rows_since(mark) == []


@pytest.fixture
def two_departments_of_history(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit KB", shared_company_wide=True)
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR KB", shared_company_wide=True)
    services.document_create(actor=people["credit_manager"], knowledge_base=credit_kb, title="Loans", content="a")
    services.document_create(actor=people["hr_manager"], knowledge_base=hr_kb, title="Leave", content="b")


def test_audit_rows_are_read_by_reviewers_of_the_department_and_company_admins(
    two_departments_of_history, people, credit, hr
):
    def titles(user):
        client = Client()
        client.force_login(user)
        return {row["object_repr"] for row in client.get("/api/audit/").json()["results"]}

    assert titles(people["credit_reviewer"]) == {"Loans"}
    assert titles(people["reviewer"]) == {"Loans", "Leave"}  # reviews every department
    assert titles(people["superuser"]) >= {"Loans", "Leave"}
    for name in ("credit_employee", "credit_manager", "credit_admin", "hr_employee", "hr_manager"):
        assert titles(people[name]) == set(), name
    hr_reviewer = member(hr, Role.COMPLIANCE_REVIEWER, "hr_reviewer")
    assert titles(hr_reviewer) == {"Leave"}


def test_audit_filters(two_departments_of_history, people, credit):
    reviewer = people["reviewer"]
    assert {e.object_repr for e in selectors.audit_list(user=reviewer, department="credit")} == {"Loans"}
    assert {e.object_repr for e in selectors.audit_list(user=reviewer, author="hr_manager")} == {"Leave"}
    assert not selectors.audit_list(user=reviewer, action="approve").exists()
    client = Client()
    client.force_login(reviewer)
    body = client.get("/api/audit/", {"department": "hr", "action": "create"}).json()
    assert [row["object_repr"] for row in body["results"]] == ["Leave"]
    assert client.get("/api/audit/", {"date_from": "not-a-date"}).status_code == 400
    compliance = selectors.compliance_version_list(user=reviewer, department=credit)
    assert [(e.action, e.version.number, e.version.document.title) for e in compliance] == [("create", 1, "Loans")]
