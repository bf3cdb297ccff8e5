"""Search agrees with the chunk policy: over the whole permission matrix (every role in two
departments, a company-wide reviewer, a superuser and a user without a department, times three ways
of sharing), the chunks BM25 and dense search can return are exactly `chunk_policy`'s "search"
queryset. Documents are built through the services, so the searchable flags are the pipeline's own
(`live_chunks_sync` on publish and archive); chunks, vectors and postings are written directly."""

import numpy as np
import pytest

from accounts.models import Role
from knowledge import services
from knowledge.models import (
    Chunk,
    ChunkVector,
    DocumentVersion,
    EmbeddingSpace,
    EmbeddingSpaceStatus,
    IngestionStatus,
    KnowledgeBase,
    VersionIngestion,
)
from knowledge.policy import chunk_policy
from retrieval.indexing import index_chunks
from retrieval.search import bm25_search, dense_search
from tests.factories import KnowledgeBaseFactory, member
from tests.knowledge.test_permissions import EXPECTED, USERS, make_user, share

DIMENSION = 4
EVERYTHING = 10_000


def _index(version: DocumentVersion, space: EmbeddingSpace, rng) -> None:
    """What ingestion leaves behind for an indexed version: chunks, vectors, postings, status."""
    document = version.document
    chunk = Chunk.objects.create(
        version=version, document=document, knowledge_base_id=document.knowledge_base_id, index=0,
        text=f"common {document.title} v{version.number}", token_count=3,
    )
    ChunkVector.objects.create(
        space=space, chunk=chunk, knowledge_base_id=document.knowledge_base_id,
        embedding=rng.normal(size=DIMENSION).tolist(),
    )
    index_chunks(chunk_ids=[chunk.pk])
    VersionIngestion.objects.update_or_create(
        version=version, defaults={"status": IngestionStatus.INDEXED, "progress": 1.0}
    )


@pytest.fixture
def library(credit, hr, compliance):
    rng = np.random.default_rng(7)
    space = EmbeddingSpace.objects.create(
        model_path="/nowhere", model_name="test", dimension=DIMENSION, status=EmbeddingSpaceStatus.ACTIVE
    )
    manager = member(credit, Role.KNOWLEDGE_MANAGER, "author")
    approver = member(credit, Role.COMPLIANCE_REVIEWER, "approver")
    kb = KnowledgeBaseFactory(department=credit, name="Credit rules")

    def new(title: str, *, index: bool = True, knowledge_base=kb, author=manager):
        document = services.document_create(actor=author, knowledge_base=knowledge_base, title=title, content=title)
        if index:
            _index(document.latest_version, space, rng)
        return document

    def edit(document, *, index: bool = True, author=manager):
        version = services.document_version_create(
            actor=author, document=document, content=f"{document.title} again",
            base_version_number=document.latest_version.number, change_note="again",
        )
        if index:
            _index(version, space, rng)
        return version

    def publish(document, reviewer=approver, author=manager):
        review = services.document_submit(actor=author, document=document)
        if review is not None:
            services.review_approve(actor=reviewer, review=review)

    live = new("live")
    publish(live)
    replaced = new("replaced")
    publish(replaced)
    edit(replaced)
    publish(replaced)  # v2 live and indexed: v1's chunks leave search
    pending = new("pending")
    publish(pending)
    edit(pending, index=False)
    publish(pending)  # v2 live but not indexed yet: v1's chunks stay searchable meanwhile
    draft_on_top = new("draft on top")
    publish(draft_on_top)
    edit(draft_on_top)  # an indexed draft is never searchable
    new("draft only")
    archived = new("archived")
    publish(archived)
    services.document_archive(reason="superseded", actor=manager, document=archived)
    hr_manager = member(hr, Role.KNOWLEDGE_MANAGER, "hr_author")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR rules")
    hr_live = new("hr live", knowledge_base=hr_kb, author=hr_manager)
    publish(hr_live, reviewer=member(hr, Role.COMPLIANCE_REVIEWER, "hr_approver"), author=hr_manager)
    return {"kb": kb, "space": space}


def _searchable_by(user, space) -> tuple[set[int], set[int]]:
    bm25 = {chunk_id for chunk_id, _score in bm25_search(user, "common", k=EVERYTHING)}
    dense = {chunk_id for chunk_id, _score in dense_search(user, "", k=EVERYTHING, vector=[1.0] * DIMENSION)}
    return bm25, dense


def test_search_returns_exactly_the_chunk_policys_search_set_over_the_whole_matrix(library, credit, hr, compliance):
    kb, space = library["kb"], library["space"]
    users = {key: make_user(*key, credit, hr, compliance) for key in USERS}
    for sharing in EXPECTED:
        kb.shared_with.clear()
        KnowledgeBase.objects.filter(pk=kb.pk).update(shared_company_wide=False)
        share(kb, sharing, hr)
        for key, user in users.items():
            allowed = set(chunk_policy.instances_user_has_permission_for(user, "search").values_list("pk", flat=True))
            bm25, dense = _searchable_by(user, space)
            assert bm25 == allowed, (sharing, key)
            assert dense == allowed, (sharing, key)
            # and every chunk search gives is one the user may open (a chat citation of it works)
            assert allowed <= set(chunk_policy.instances_user_has_permission_for(user, "view").values_list(
                "pk", flat=True)), (sharing, key)


def test_what_a_reader_searches_is_written_out(library, credit):
    """The matrix test is not vacuous: a Credit employee finds exactly these versions."""
    reader = member(credit, Role.EMPLOYEE, "reader")
    bm25, _dense = _searchable_by(reader, library["space"])
    found = sorted(Chunk.objects.filter(pk__in=bm25).values_list("text", flat=True))
    assert found == ["common draft on top v1", "common live v1", "common pending v1", "common replaced v2"]
