"""An oversized upload is never written whole to disk: the temporary file stops at the limit, the
size the view sees is what was sent, and the page refuses it with its message."""

import os

from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from knowledge.models import Document
from tests.factories import KnowledgeBaseFactory

MB = 1024 * 1024


def parsed_upload(size: int):
    request = RequestFactory().post("/", {"file": SimpleUploadedFile("big.md", b"x" * size)})
    return request.FILES["file"]


def test_the_temporary_file_holds_at_most_the_limit_and_the_size_is_what_was_sent(settings):
    settings.UPLOAD_MAX_BYTES = 1 * MB
    upload = parsed_upload(3 * MB)  # over FILE_UPLOAD_MAX_MEMORY_SIZE: a temporary file
    assert isinstance(upload, TemporaryUploadedFile)
    assert upload.size == 3 * MB
    assert os.path.getsize(upload.temporary_file_path()) == 1 * MB
    upload.close()
    # Within the limit, the file is kept whole.
    settings.UPLOAD_MAX_BYTES = 4 * MB
    upload = parsed_upload(3 * MB)
    assert upload.size == os.path.getsize(upload.temporary_file_path()) == 3 * MB
    assert upload.read() == b"x" * (3 * MB)
    upload.close()


def test_the_upload_page_refuses_a_file_over_the_limit_by_the_size_sent(db, people, credit, settings, client):
    kb = KnowledgeBaseFactory(department=credit)
    settings.UPLOAD_MAX_BYTES = 1 * MB
    client.force_login(people["credit_manager"])
    page = client.post(reverse("ingest:upload", args=[kb.pk]),
                       {"files": [SimpleUploadedFile("big.md", b"# Big\n\n" + b"x" * (3 * MB))]}).content.decode()
    assert 'data-outcome="refused"' in page and "3145735" in page.replace(",", "").replace("\u202f", "")
    assert not Document.objects.filter(knowledge_base=kb).exists()
