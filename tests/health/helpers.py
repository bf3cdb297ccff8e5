"""Publishing documents for real: ingestion in this process, the publish step, then the health job
the publish hook queued, run in this process through core's job_execute."""

from core.models import Job
from core.services import job_execute
from knowledge.models import Document
from knowledge.services import document_submit, document_version_create, review_approve
from tests.factories import document, ingest


def run_health_jobs() -> list[dict]:
    results = []
    for job in Job.objects.filter(kind="health_published_check", status="queued").order_by("created_at"):
        results.append(job_execute(job_id=job.pk).result)
    return results


def publish(doc: Document, author, reviewer=None) -> Document:
    ingest(doc.latest_version_id)
    review = document_submit(actor=author, document=doc)
    if review is not None:
        review_approve(actor=reviewer, review=review)
    doc.refresh_from_db()
    return doc


def live_document(kb, author, content, reviewer=None, title=None, captured=None) -> Document:
    doc = document(kb, author, content=content, title=title)
    return publish(doc, author, reviewer)


def new_version(doc: Document, author, content, reviewer=None) -> Document:
    doc.refresh_from_db()
    document_version_create(actor=author, document=doc, content=content, base_version_number=doc.latest_version.number, change_note="update")
    doc.refresh_from_db()
    return publish(doc, author, reviewer)
