"""The permission matrix, as users see it through the API and the pages: four roles in two
departments, plus a company-wide reviewer, a superuser and a user with no department, over three
ways of sharing a Credit knowledge base. The expectations are written out by hand, not derived
from the policy."""

import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from accounts.models import Role
from core.models import AuditEntry
from knowledge import services
from knowledge.models import Chunk, DocumentVersion, KnowledgeBase
from knowledge.policy import chunk_policy, document_policy, knowledge_base_policy, version_policy
from tests.factories import KnowledgeBaseFactory, UserFactory, grant_global, member

NONE, READER, EDITOR, REVIEWER, ALL = "none", "reader", "editor", "reviewer", "all"

USERS = [
    ("credit", Role.ADMIN),
    ("credit", Role.KNOWLEDGE_MANAGER),
    ("credit", Role.COMPLIANCE_REVIEWER),
    ("credit", Role.EMPLOYEE),
    ("hr", Role.ADMIN),
    ("hr", Role.KNOWLEDGE_MANAGER),
    ("hr", Role.COMPLIANCE_REVIEWER),
    ("hr", Role.EMPLOYEE),
    ("global", "reviewer"),
    ("global", "superuser"),
    ("none", "outsider"),
]

# sharing -> user -> what they may do with the Credit knowledge base
EXPECTED = {
    "private": {
        ("credit", Role.ADMIN): EDITOR,
        ("credit", Role.KNOWLEDGE_MANAGER): EDITOR,
        ("credit", Role.COMPLIANCE_REVIEWER): REVIEWER,
        ("credit", Role.EMPLOYEE): READER,
        ("hr", Role.ADMIN): NONE,
        ("hr", Role.KNOWLEDGE_MANAGER): NONE,
        ("hr", Role.COMPLIANCE_REVIEWER): NONE,
        ("hr", Role.EMPLOYEE): NONE,
        ("global", "reviewer"): REVIEWER,
        ("global", "superuser"): ALL,
        ("none", "outsider"): NONE,
    },
    "shared_with_hr": {
        ("credit", Role.ADMIN): EDITOR,
        ("credit", Role.KNOWLEDGE_MANAGER): EDITOR,
        ("credit", Role.COMPLIANCE_REVIEWER): REVIEWER,
        ("credit", Role.EMPLOYEE): READER,
        ("hr", Role.ADMIN): READER,
        ("hr", Role.KNOWLEDGE_MANAGER): READER,
        ("hr", Role.COMPLIANCE_REVIEWER): READER,
        ("hr", Role.EMPLOYEE): READER,
        ("global", "reviewer"): REVIEWER,
        ("global", "superuser"): ALL,
        ("none", "outsider"): NONE,
    },
    "company_wide": {
        ("credit", Role.ADMIN): EDITOR,
        ("credit", Role.KNOWLEDGE_MANAGER): EDITOR,
        ("credit", Role.COMPLIANCE_REVIEWER): REVIEWER,
        ("credit", Role.EMPLOYEE): READER,
        ("hr", Role.ADMIN): READER,
        ("hr", Role.KNOWLEDGE_MANAGER): READER,
        ("hr", Role.COMPLIANCE_REVIEWER): READER,
        ("hr", Role.EMPLOYEE): READER,
        ("global", "reviewer"): REVIEWER,
        ("global", "superuser"): ALL,
        ("none", "outsider"): READER,
    },
}

# level -> probe -> expected answer (status code, or what a list shows)
OUTCOMES = {
    NONE: dict(kb=404, published=404, draft=404, live_version=404, draft_version=404, history=404, diff=404,
               file=404, review=404, audit=404, doc_list=set(), kb_list=False, edit=404, approve=404),
    READER: dict(kb=200, published=200, draft=404, live_version=200, draft_version=404, history=[1], diff=404,
                 file=200, review=404, audit=404, doc_list={"Published", "Revised"}, kb_list=True, edit=403,
                 approve=404),
    EDITOR: dict(kb=200, published=200, draft=200, live_version=200, draft_version=200, history=[2, 1], diff=200,
                 file=200, review=200, audit=404, doc_list={"Published", "Draft", "Revised"}, kb_list=True,
                 edit=201, approve=403),
    REVIEWER: dict(kb=200, published=200, draft=200, live_version=200, draft_version=200, history=[2, 1],
                   diff=200, file=200, review=200, audit=200, doc_list={"Published", "Draft", "Revised"},
                   kb_list=True, edit=403, approve=200),
    ALL: dict(kb=200, published=200, draft=200, live_version=200, draft_version=200, history=[2, 1], diff=200,
              file=200, review=200, audit=200, doc_list={"Published", "Draft", "Revised"}, kb_list=True, edit=201,
              approve=200),
}

# The "Revised" document: v1 published, v2 published (live), v3 sent back, v4 in review.
# Whoever reads the document opens every version that was ever published, and their chunks.
PUBLISHED_VERSIONS = {
    NONE: dict(old_version=404, old_page=404, sent_back=404, in_review=404, revised_history=404,
               revised_diff=404, chunks=[], old_chunks_page=404, sent_back_chunks_page=404,
               kb_in_index=False, list_row=None, page_state=None, lock_banner=None),
    READER: dict(old_version=200, old_page=200, sent_back=404, in_review=404, revised_history=[2, 1],
                 revised_diff=200, chunks=[1, 2], old_chunks_page=200, sent_back_chunks_page=404,
                 kb_in_index=True, list_row=("Published", "v2"), page_state="Published", lock_banner=False),
}
PUBLISHED_VERSIONS[EDITOR] = PUBLISHED_VERSIONS[REVIEWER] = PUBLISHED_VERSIONS[ALL] = dict(
    old_version=200, old_page=200, sent_back=200, in_review=200, revised_history=[4, 3, 2, 1], revised_diff=200,
    chunks=[1, 2, 3, 4], old_chunks_page=200, sent_back_chunks_page=200, kb_in_index=True,
    list_row=("In review", "v4"), page_state="In review", lock_banner=True,
)


@pytest.fixture
def world(credit, hr, compliance, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    manager = member(credit, Role.KNOWLEDGE_MANAGER, "author")
    approver = member(credit, Role.COMPLIANCE_REVIEWER, "approver")
    kb = KnowledgeBaseFactory(department=credit, name="Credit rules")
    published = services.document_create(
        actor=manager, knowledge_base=kb, title="Published", content="Rate 3%",
        original_file=ContentFile("利率 3%".encode(), name="rate.md"),
    )
    services.review_approve(actor=approver, review=services.document_submit(actor=manager, document=published))
    services.document_version_create(
        actor=manager, document=published, content="Rate 5%", base_version_number=1, change_note="new rate"
    )
    draft = services.document_create(actor=manager, knowledge_base=kb, title="Draft", content="secret plan")
    review = services.document_submit(actor=manager, document=draft)
    revised = services.document_create(actor=manager, knowledge_base=kb, title="Revised", content="Fee 1%")
    services.review_approve(actor=approver, review=services.document_submit(actor=manager, document=revised))
    for number, content in ((2, "Fee 2%"), (3, "Fee 9%")):
        services.document_version_create(
            actor=manager, document=revised, content=content, base_version_number=number - 1, change_note="fee"
        )
        submitted = services.document_submit(actor=manager, document=revised)
        if number == 2:
            services.review_approve(actor=approver, review=submitted)
        else:
            services.review_request_changes(actor=approver, review=submitted, comment="too high")
    services.document_version_create(
        actor=manager, document=revised, content="Fee 3%", base_version_number=3, change_note="fee"
    )
    services.document_submit(actor=manager, document=revised)
    revised_versions = {v.number: v for v in DocumentVersion.objects.filter(document=revised)}
    for version in revised_versions.values():
        Chunk.objects.create(
            version=version, document=revised, knowledge_base=kb, index=0, text=version.content, token_count=2
        )
    services.edit_lock_acquire(actor=manager, document=revised)
    return {
        "kb": kb,
        "published": published,
        "draft": draft,
        "review": review,
        "live_version": DocumentVersion.objects.get(document=published, number=1),
        "draft_version": DocumentVersion.objects.get(document=published, number=2),
        "audit": AuditEntry.objects.get(action="create", object_id=str(published.pk), version__number=1),
        "revised": revised,
        "revised_versions": revised_versions,
    }


def make_user(department_code, role, credit, hr, compliance):
    if department_code == "global":
        if role == "superuser":
            return UserFactory(username="root", is_superuser=True)
        return grant_global(member(compliance, Role.COMPLIANCE_REVIEWER, "company_reviewer"), "review_knowledge")
    if department_code == "none":
        return UserFactory(username="nobody")
    department = {"credit": credit, "hr": hr}[department_code]
    return member(department, role, f"{department_code}_{role}")


def share(kb: KnowledgeBase, sharing: str, hr) -> None:
    if sharing == "shared_with_hr":
        kb.shared_with.add(hr)
    elif sharing == "company_wide":
        KnowledgeBase.objects.filter(pk=kb.pk).update(shared_company_wide=True)


def probe(client: Client, world: dict) -> dict:
    pub, draft = world["published"], world["draft"]
    seen = {
        "kb": client.get(f"/api/knowledge-bases/{world['kb'].pk}/").status_code,
        "published": client.get(f"/api/documents/{pub.pk}/").status_code,
        "draft": client.get(f"/api/documents/{draft.pk}/").status_code,
        "live_version": client.get(f"/api/versions/{world['live_version'].pk}/").status_code,
        "draft_version": client.get(f"/api/versions/{world['draft_version'].pk}/").status_code,
        "diff": client.get(f"/api/documents/{pub.pk}/diff/?from=1&to=2").status_code,
        "file": client.get(f"/api/versions/{world['live_version'].pk}/file/").status_code,
        "review": client.get(f"/api/reviews/{world['review'].pk}/").status_code,
        "audit": client.get(f"/api/audit/{world['audit'].pk}/").status_code,
        "doc_list": {d["title"] for d in client.get("/api/documents/").json()["results"]},
        "kb_list": world["kb"].pk in {k["id"] for k in client.get("/api/knowledge-bases/").json()["results"]},
    }
    history = client.get(f"/api/documents/{pub.pk}/versions/")
    seen["history"] = [v["number"] for v in history.json()["results"]] if history.status_code == 200 else history.status_code
    # Writes last: they change what later probes would see.
    seen["edit"] = client.post(
        f"/api/documents/{pub.pk}/versions/",
        {"content": "Rate 4%", "base_version": 2, "change_note": "edit"},
        content_type="application/json",
    ).status_code
    seen["approve"] = client.post(
        f"/api/reviews/{world['review'].pk}/approve/", {"comment": "ok"}, content_type="application/json"
    ).status_code
    return seen


@pytest.mark.parametrize("sharing", list(EXPECTED))
@pytest.mark.parametrize("department_code,role", USERS)
def test_permission_matrix_through_the_api(world, credit, hr, compliance, sharing, department_code, role):
    share(world["kb"], sharing, hr)
    user = make_user(department_code, role, credit, hr, compliance)
    client = Client()
    client.force_login(user)

    level = EXPECTED[sharing][(department_code, role)]
    assert probe(client, world) == OUTCOMES[level]


def _cell(html: str, pattern: str):
    found = re.search(pattern, html, re.S)
    return found.groups() if found and len(found.groups()) > 1 else (found.group(1) if found else None)


def probe_published_versions(client: Client, user, world: dict) -> dict:
    revised, versions = world["revised"], world["revised_versions"]
    history = client.get(f"/api/documents/{revised.pk}/versions/")
    index = client.get("/knowledge/")
    kb_page = client.get(f"/knowledge/bases/{world['kb'].pk}/")
    document_page = client.get(f"/knowledge/documents/{revised.pk}/")
    row = (
        _cell(
            kb_page.content.decode(),
            rf'data-document="{revised.pk}">.*?<span class="state[^"]*">([^<]*)</span></td>\s*<td>(v\d+)',
        )
        if kb_page.status_code == 200
        else None
    )
    page = document_page.content.decode() if document_page.status_code == 200 else None
    return {
        "old_version": client.get(f"/api/versions/{versions[1].pk}/").status_code,
        "old_page": client.get(f"/knowledge/documents/{revised.pk}/versions/1/").status_code,
        "sent_back": client.get(f"/api/versions/{versions[3].pk}/").status_code,
        "in_review": client.get(f"/api/versions/{versions[4].pk}/").status_code,
        "revised_history": [v["number"] for v in history.json()["results"]] if history.status_code == 200
        else history.status_code,
        "revised_diff": client.get(f"/api/documents/{revised.pk}/diff/?from=1&to=2").status_code,
        "chunks": sorted(
            chunk_policy.instances_user_has_permission_for(user, "view")
            .filter(document=revised)
            .values_list("version__number", flat=True)
        ),
        "old_chunks_page": client.get(f"/knowledge/versions/{versions[1].pk}/chunks/").status_code,
        "sent_back_chunks_page": client.get(f"/knowledge/versions/{versions[3].pk}/chunks/").status_code,
        "kb_in_index": index.status_code == 200
        and f'href="/knowledge/bases/{world["kb"].pk}/"' in index.content.decode(),
        "list_row": row,
        "page_state": _cell(page, r'id="document-state">([^<]*)<') if page else None,
        "lock_banner": ("author is editing this document" in page) if page else None,
    }


@pytest.mark.parametrize("sharing", list(EXPECTED))
@pytest.mark.parametrize("department_code,role", USERS)
def test_every_published_version_opens_to_readers(world, credit, hr, compliance, sharing, department_code, role):
    """The read rule for versions (and their chunks), and what pages say about drafts, per role."""
    share(world["kb"], sharing, hr)
    user = make_user(department_code, role, credit, hr, compliance)
    client = Client()
    client.force_login(user)

    level = EXPECTED[sharing][(department_code, role)]
    assert probe_published_versions(client, user, world) == PUBLISHED_VERSIONS[level]


@pytest.mark.parametrize("sharing", list(EXPECTED))
@pytest.mark.parametrize("department_code,role", USERS)
def test_readable_ids_follow_the_same_matrix(world, credit, hr, compliance, sharing, department_code, role):
    """Search restricts every query to `readable_ids`: it must agree with the hand-written table
    and with the read queryset, for every role and way of sharing."""
    share(world["kb"], sharing, hr)
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR only")
    user = make_user(department_code, role, credit, hr, compliance)

    ids = knowledge_base_policy.readable_ids(user)
    assert (world["kb"].pk in ids) == (EXPECTED[sharing][(department_code, role)] != NONE)
    assert sorted(ids) == sorted(knowledge_base_policy.instances_user_has_permission_for(user, "view")
                                 .values_list("pk", flat=True))
    assert (hr_kb.pk in ids) == (department_code == "hr" or role in ("superuser", "reviewer"))


def test_hidden_objects_answer_exactly_like_missing_ones(world, hr):
    client = Client()
    client.force_login(member(hr, Role.EMPLOYEE, "hr_reader"))
    hidden = client.get(f"/api/documents/{world['published'].pk}/")
    missing = client.get("/api/documents/99999999/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    # No audit row is written for a refused download.
    assert not AuditEntry.objects.filter(action="download").exists()


def test_readers_never_see_the_draft_text_of_a_published_document(world, credit):
    client = Client()
    client.force_login(member(credit, Role.EMPLOYEE, "reader"))
    body = client.get(f"/api/documents/{world['published'].pk}/").json()
    assert body["live_version"]["number"] == 1
    assert body["latest_version"]["number"] == 1  # v2 is a draft: their latest is the live one
    assert body["state"] == "published"  # not "draft"
    assert client.get(f"/api/documents/{world['published'].pk}/diff/?from=1&to=2").status_code == 404
    listed = client.get("/api/versions/", {"document": world["published"].pk}).json()["results"]
    assert [v["number"] for v in listed] == [1]


def test_archived_documents_disappear_for_readers_but_not_for_editors(world, credit):
    services.document_archive(reason="superseded", actor=world["published"].owner, document=world["published"])
    reader = Client()
    reader.force_login(member(credit, Role.EMPLOYEE, "reader"))
    assert reader.get(f"/api/documents/{world['published'].pk}/").status_code == 404
    assert reader.get(f"/api/versions/{world['live_version'].pk}/file/").status_code == 404
    editor = Client()
    editor.force_login(world["published"].owner)
    assert editor.get(f"/api/documents/{world['published'].pk}/").json()["state"] == "archived"


def test_read_rule_is_a_queryset_usable_as_an_sql_filter(world, credit, hr):
    """Search will filter chunk rows with it: check it composes inside another query."""
    reader = member(hr, Role.EMPLOYEE, "hr_reader")
    visible = DocumentVersion.objects.filter(pk__in=version_policy.instances_user_has_permission_for(reader, "view"))
    assert not visible.exists()
    world["kb"].shared_with.add(hr)
    assert sorted(visible.values_list("document__title", "number")) == [
        ("Published", 1), ("Revised", 1), ("Revised", 2)
    ]
    assert set(document_policy.instances_user_has_permission_for(reader, "view")) == {
        world["published"], world["revised"]
    }
    assert str(knowledge_base_policy.instances_user_has_permission_for(reader, "view").query).count("SELECT") >= 2


def test_guardian_grant_on_a_department_opens_its_knowledge(world, hr):
    from tests.factories import grant_object

    reader = grant_object(member(hr, Role.EMPLOYEE, "hr_guest"), "view_knowledge", world["kb"].department)
    client = Client()
    client.force_login(reader)
    assert client.get(f"/api/documents/{world['published'].pk}/").status_code == 200
    assert client.get(f"/api/documents/{world['draft'].pk}/").status_code == 404
