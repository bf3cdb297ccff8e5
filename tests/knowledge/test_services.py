import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from accounts.models import Role
from knowledge import services
from knowledge.models import Document, DocumentState, DocumentVersion, Review, ReviewState
from knowledge.services import IllegalTransition, VersionConflict
from tests.factories import KnowledgeBaseFactory, document, member, published_document


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, name="Credit policies")


@pytest.fixture
def manager(people):
    return people["credit_manager"]


@pytest.fixture
def reviewer(people):
    return people["credit_reviewer"]


def texts(doc: Document) -> dict[int, str]:
    return dict(DocumentVersion.objects.filter(document=doc).values_list("number", "content"))


# --- concurrent editing --------------------------------------------------------------------------


def test_second_editor_from_the_same_version_gets_a_conflict_and_both_texts_survive(kb, manager, credit):
    other_manager = member(credit, Role.KNOWLEDGE_MANAGER, "credit_manager_2")
    doc = document(kb, manager, content="Loans need two signatures.")

    first = services.document_version_create(
        actor=manager, document=doc, content="Loans need three signatures.", base_version_number=1
    )
    stale_doc = Document.objects.get(pk=doc.pk)
    with pytest.raises(VersionConflict) as conflict:
        services.document_version_create(
            actor=other_manager,
            document=stale_doc,
            content="贷款需要两个签名和一个印章。",
            base_version_number=1,
        )
    # Nothing was overwritten: the first text is the latest version ...
    assert conflict.value.latest.pk == first.pk and conflict.value.latest.number == 2
    assert texts(doc) == {1: "Loans need two signatures.", 2: "Loans need three signatures."}
    # ... and the rejected text came back to its author, who can save it on top of v2.
    assert conflict.value.content == "贷款需要两个签名和一个印章。"
    merged = services.document_version_create(
        actor=other_manager, document=stale_doc, content=conflict.value.content, base_version_number=2
    )
    assert merged.number == 3 and merged.parent_id == first.pk
    assert texts(doc) == {
        1: "Loans need two signatures.",
        2: "Loans need three signatures.",
        3: "贷款需要两个签名和一个印章。",
    }


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_saves_from_the_same_version_one_wins_one_conflicts(credit):
    manager_a = member(credit, Role.KNOWLEDGE_MANAGER, "editor_a")
    manager_b = member(credit, Role.KNOWLEDGE_MANAGER, "editor_b")
    kb = KnowledgeBaseFactory(department=credit)
    doc = document(kb, manager_a, content="base")
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def save(name, actor):
        try:
            barrier.wait(timeout=10)
            version = services.document_version_create(
                actor=actor, document=Document.objects.get(pk=doc.pk), content=f"text of {name}", base_version_number=1
            )
            outcomes[name] = version.number
        except VersionConflict as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(n, u)) for n, u in (("a", manager_a), ("b", manager_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [n for n, o in outcomes.items() if o == 2]
    losers = [n for n, o in outcomes.items() if isinstance(o, VersionConflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert outcomes[losers[0]].content == f"text of {losers[0]}"
    assert texts(doc) == {1: "base", 2: f"text of {winners[0]}"}


def test_editing_a_published_document_needs_a_change_note(kb, manager, reviewer):
    doc = published_document(kb, manager, reviewer)
    with pytest.raises(ValidationError) as error:
        services.document_version_create(actor=manager, document=doc, content="new", base_version_number=1)
    assert "change_note" in error.value.message_dict
    version = services.document_version_create(
        actor=manager, document=doc, content="new", base_version_number=1, change_note="fix rate"
    )
    doc.refresh_from_db()
    # The new text is a draft; the approved text stays live for readers.
    assert (doc.state, doc.latest_version_id, doc.live_version.number) == (DocumentState.DRAFT, version.pk, 1)


def test_someone_elses_edit_lock_blocks_saving_until_an_admin_breaks_it(kb, manager, people, credit):
    other = member(credit, Role.KNOWLEDGE_MANAGER, "locker")
    doc = document(kb, manager)
    lock = services.edit_lock_acquire(actor=other, document=doc)
    with pytest.raises(services.EditLocked) as locked:
        services.document_version_create(actor=manager, document=doc, content="x", base_version_number=1)
    assert locked.value.lock.owner == other
    with pytest.raises(services.EditLocked):
        services.edit_lock_acquire(actor=manager, document=doc)
    with pytest.raises(PermissionDenied):
        services.edit_lock_break(actor=manager, document=doc)
    services.edit_lock_break(actor=people["credit_admin"], document=doc)
    assert not type(lock).objects.filter(pk=lock.pk).exists()
    assert services.document_version_create(actor=manager, document=doc, content="x", base_version_number=1).number == 2


# --- review state machine ------------------------------------------------------------------------


def test_submit_approve_publishes_and_keeps_the_old_live_version(kb, manager, reviewer):
    doc = published_document(kb, manager, reviewer, content="old rule")
    v1 = doc.live_version
    services.document_version_create(
        actor=manager, document=doc, content="new rule", base_version_number=1, change_note="n"
    )
    review = services.document_submit(actor=manager, document=doc)
    doc.refresh_from_db()
    assert doc.state == DocumentState.IN_REVIEW and doc.live_version_id == v1.pk
    assert review.version.number == 2 and review.state == ReviewState.OPEN

    services.review_approve(actor=reviewer, review=review, comment="ok")
    doc.refresh_from_db()
    review.refresh_from_db()
    assert (doc.state, doc.live_version.number, doc.live_version.content) == (DocumentState.PUBLISHED, 2, "new rule")
    assert (review.state, review.decided_by, review.comment) == (ReviewState.APPROVED, reviewer, "ok")
    assert DocumentVersion.objects.get(pk=v1.pk).content == "old rule"


def test_request_changes_sends_the_document_back_to_draft(kb, manager, reviewer):
    doc = document(kb, manager)
    review = services.document_submit(actor=manager, document=doc)
    with pytest.raises(ValidationError):
        services.review_request_changes(actor=reviewer, review=review, comment="  ")
    services.review_request_changes(actor=reviewer, review=review, comment="Cite the regulation.")
    doc.refresh_from_db()
    review.refresh_from_db()
    assert doc.state == DocumentState.DRAFT and doc.live_version is None
    assert (review.state, review.comment) == (ReviewState.CHANGES_REQUESTED, "Cite the regulation.")
    # The same draft can be submitted again: a new review of the same version.
    again = services.document_submit(actor=manager, document=doc)
    assert again.pk != review.pk and again.version_id == review.version_id


def test_illegal_transitions_are_rejected(kb, manager, reviewer):
    doc = document(kb, manager)
    review = services.document_submit(actor=manager, document=doc)
    with pytest.raises(IllegalTransition):  # already in review
        services.document_submit(actor=manager, document=doc)
    services.review_approve(actor=reviewer, review=review)
    with pytest.raises(IllegalTransition):  # approved twice
        services.review_approve(actor=reviewer, review=review)
    with pytest.raises(IllegalTransition):  # a decided review cannot be reopened as "changes requested"
        services.review_request_changes(actor=reviewer, review=review, comment="late")
    with pytest.raises(IllegalTransition):  # nothing new to publish
        services.document_submit(actor=manager, document=doc)

    services.document_archive(reason="superseded", actor=manager, document=doc)
    for attempt in (
        lambda: services.document_submit(actor=manager, document=doc),
        lambda: services.document_version_create(
            actor=manager, document=doc, content="x", base_version_number=1, change_note="n"
        ),
        lambda: services.document_archive(reason="superseded", actor=manager, document=doc),
        lambda: services.document_rollback(actor=manager, document=doc, to_number=1),
    ):
        with pytest.raises(IllegalTransition):
            attempt()
    doc.refresh_from_db()
    assert doc.state == DocumentState.ARCHIVED and doc.versions.count() == 1


def test_a_new_version_cancels_the_open_review_so_the_old_one_cannot_be_approved(kb, manager, reviewer):
    doc = document(kb, manager, content="first")
    review = services.document_submit(actor=manager, document=doc)
    services.document_version_create(actor=manager, document=doc, content="second", base_version_number=1)
    review.refresh_from_db()
    assert review.state == ReviewState.CANCELLED
    with pytest.raises(IllegalTransition):
        services.review_approve(actor=reviewer, review=review)
    doc.refresh_from_db()
    assert doc.live_version is None and doc.state == DocumentState.DRAFT


def test_only_reviewers_covering_the_department_decide(kb, manager, people):
    doc = document(kb, manager)
    review = services.document_submit(actor=manager, document=doc)
    for name in ("credit_manager", "credit_admin", "credit_employee", "hr_manager"):
        with pytest.raises(PermissionDenied):
            services.review_approve(actor=people[name], review=review)
    services.review_approve(actor=people["reviewer"], review=review)  # global reviewer in Compliance
    assert Review.objects.get(pk=review.pk).state == ReviewState.APPROVED


def test_knowledge_base_without_review_publishes_on_submit(credit, manager):
    kb = KnowledgeBaseFactory(department=credit, review_required=False)
    doc = document(kb, manager, content="FAQ")
    assert services.document_submit(actor=manager, document=doc) is None
    doc.refresh_from_db()
    assert doc.state == DocumentState.PUBLISHED and doc.live_version.number == 1
    assert not Review.objects.filter(document=doc).exists()


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_creates_a_new_version_from_an_old_one_and_goes_through_review(kb, manager, reviewer):
    doc = published_document(kb, manager, reviewer, content="利率为 3%。")
    services.document_version_create(
        actor=manager, document=doc, content="利率为 5%。", base_version_number=1, change_note="rate"
    )
    services.review_approve(actor=reviewer, review=services.document_submit(actor=manager, document=doc))

    restored = services.document_rollback(actor=manager, document=doc, to_number=1)
    doc.refresh_from_db()
    assert (restored.number, restored.content, restored.change_note) == (3, "利率为 3%。", "rolled back to v1")
    assert restored.parent.number == 2
    # History is not edited: v1 and v2 are unchanged; v2 stays live until the review approves v3.
    assert texts(doc) == {1: "利率为 3%。", 2: "利率为 5%。", 3: "利率为 3%。"}
    assert doc.state == DocumentState.IN_REVIEW and doc.live_version.number == 2
    review = Review.objects.get(document=doc, state=ReviewState.OPEN)
    assert review.version_id == restored.pk
    services.review_approve(actor=reviewer, review=review)
    doc.refresh_from_db()
    assert doc.live_version_id == restored.pk


def test_rollback_to_a_missing_or_the_latest_version_is_refused(kb, manager):
    doc = document(kb, manager)
    with pytest.raises(ValidationError):
        services.document_rollback(actor=manager, document=doc, to_number=7)
    with pytest.raises(IllegalTransition):
        services.document_rollback(actor=manager, document=doc, to_number=1)


# --- authorization in services -------------------------------------------------------------------


def test_services_refuse_users_without_the_capability(kb, manager, people, hr):
    doc = document(kb, manager)
    for name in ("credit_employee", "credit_reviewer", "hr_manager"):
        user = people[name]
        with pytest.raises(PermissionDenied):
            services.document_create(actor=user, knowledge_base=kb, title="t", content="c")
        with pytest.raises(PermissionDenied):
            services.document_version_create(actor=user, document=doc, content="c", base_version_number=1)
        with pytest.raises(PermissionDenied):
            services.document_submit(actor=user, document=doc)
        with pytest.raises(PermissionDenied):
            services.knowledge_base_update(actor=user, knowledge_base=kb, shared_company_wide=True)
    with pytest.raises(PermissionDenied):
        services.knowledge_base_create(actor=people["hr_manager"], department=kb.department, name="x")
    assert services.knowledge_base_create(actor=people["hr_manager"], department=hr, name="HR FAQ").department == hr


def test_metadata_update_changes_title_tags_and_review_date_without_a_version(kb, manager):
    doc = document(kb, manager, title="Old")
    services.document_update_metadata(actor=manager, document=doc, title="New", tags=["loans", "loans", " 贷款 "])
    doc.refresh_from_db()
    assert (doc.title, doc.tags, doc.versions.count()) == ("New", ["loans", "贷款"], 1)
