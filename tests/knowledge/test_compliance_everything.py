"""Issue 12, "Compliance sees everything": every audited action (not only version events) on the
compliance page, its filters and exports, action names translated, scoped by the audit policy."""

import csv
import io
import re

import pytest
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Role
from knowledge import services
from sources.models import SourceKind
from sources.services import source_create, source_sync_request
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, document, member, published_document


@pytest.fixture
def history(credit, hr, people):
    kb = KnowledgeBaseFactory(department=credit, name="Credit rules")
    manager, admin = people["credit_manager"], people["credit_admin"]
    services.knowledge_base_update(actor=manager, knowledge_base=kb, shared_with=[hr])  # sharing change
    account_services.membership_set(actor=admin, user=people["credit_employee"], department=credit,
                                    role=Role.KNOWLEDGE_MANAGER)  # role change
    source = source_create(actor=manager, knowledge_base=kb, kind=SourceKind.HTTP, name="Handbook API",
                           url="http://127.0.0.1:9/records", key_field="id", title_template="{name}",
                           body_template="{{ text }}")
    source_sync_request(actor=manager, source=source)
    doc = published_document(kb, manager, people["credit_reviewer"], title="Loan policy")
    services.edit_lock_acquire(actor=people["credit_employee"], document=doc)
    services.edit_lock_break(actor=admin, document=doc)
    services.document_archive(actor=manager, document=doc, reason="Replaced")
    services.document_restore(actor=manager, document=doc, reason="Still valid")
    # another department's activity
    hr_kb = KnowledgeBaseFactory(department=hr, name="Leave rules")
    services.knowledge_base_update(actor=people["hr_manager"], knowledge_base=hr_kb, shared_company_wide=True)
    return doc


def _actions(page: str) -> list[str]:
    return re.findall(r'<tr data-action="([^"]+)">', page)


def test_the_compliance_page_lists_every_audited_action(history, people):
    client = login(people["credit_reviewer"])
    page = client.get(reverse("knowledge:compliance")).content.decode()
    actions = set(_actions(page))
    assert {"permission_change", "source_sync", "edit_lock_break", "archive", "restore", "create", "publish"} <= actions
    assert "Replaced" in page and "Still valid" in page  # the reasons
    assert "Leave rules" not in page  # HR's rows are not the credit reviewer's

    only = client.get(reverse("knowledge:compliance"), {"action": "permission_change"}).content.decode()
    assert set(_actions(only)) == {"permission_change"} and len(_actions(only)) == 2  # sharing + role

    csv_text = b"".join(client.get(reverse("knowledge:compliance_csv"), {"action": "restore"}).streaming_content)
    rows = list(csv.reader(io.StringIO(csv_text.decode("utf-8-sig"))))
    assert [r[2] for r in rows[1:]] == ["restore"] and rows[1][12] == "Loan policy"
    printable = client.get(reverse("knowledge:compliance_print"), {"action": "edit_lock_break"}).content.decode()
    assert _actions(printable) == ["edit_lock_break"]

    # the document filter finds rows about the document itself as well as its versions
    filtered = client.get(reverse("knowledge:compliance"), {"document": history.pk}).content.decode()
    assert {"edit_lock_break", "archive", "restore", "publish"} <= set(_actions(filtered))
    assert "source_sync" not in _actions(filtered)


def test_action_names_are_translated_and_rows_stay_on_one_line_in_chinese(history, people):
    client = login(people["reviewer"])
    page = client.get(reverse("knowledge:compliance"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    labels = re.findall(r"<td class=\"nowrap\" data-action-label>([^<]+)</td>", page)
    assert labels and not any(label in ("publish", "approve", "submit", "archive", "restore") for label in labels)
    assert "发布" in labels and "恢复" in labels
    assert '<td class="nowrap"><time' in page  # dates never wrap


def test_another_department_reviewer_sees_none_of_it(history, hr, people):
    hr_reviewer = member(hr, Role.COMPLIANCE_REVIEWER, "hr_reviewer")
    page = login(hr_reviewer).get(reverse("knowledge:compliance")).content.decode()
    assert "Loan policy" not in page and "Credit rules" not in page
    assert set(_actions(page)) <= {"create", "permission_change"}
    assert login(hr_reviewer).get(reverse("knowledge:compliance"), {"document": history.pk}).status_code == 404
    assert login(people["credit_manager"]).get(reverse("knowledge:compliance")).status_code == 404
