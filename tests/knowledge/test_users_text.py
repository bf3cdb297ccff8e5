"""Issue 12, "the user's text is the user's text", seen where users see it: the upload page and its
outcome, the version page, the API's version, the database rows; and the editor's text uploads."""

import io
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.urls import reverse
from fpdf import FPDF

from knowledge import embedding
from knowledge.ingestion.uploads import upload_files
from knowledge.models import Chunk, Document, DocumentVersion, IngestionStatus, sha256_text
from tests.factories import KnowledgeBaseFactory, ingest



def make_pdf(text: str, *, title: str) -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())

pytestmark = pytest.mark.django_db

REGULATION = (
    "# 贷款管理办法\n\n"
    "第一章 总则\n"
    "第一条 为规范贷款管理，制定本办法。\n"
    "第二条 本办法适用于全体员工。\n\n"
    "## 第二章 审批\n\n"
    "第三条 贷款须经两级审批。\n"
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


def _upload_page(client, kb, files, **data):
    return client.post(reverse("ingest:upload", args=[kb.pk]), {"files": files, **data})


def test_an_uploaded_markdown_file_is_the_versions_content_exactly(client_for, people, kb):
    client = client_for(people["credit_manager"])
    raw = REGULATION.encode("utf-8")
    response = _upload_page(client, kb, [SimpleUploadedFile("loan-policy-v1.md", raw)])
    assert response.status_code == 200
    version = DocumentVersion.objects.get(document__knowledge_base=kb)
    # Spaces between Chinese words and line breaks inside a paragraph are kept.
    assert version.content == REGULATION
    assert "第一章 总则\n第一条" in version.content
    assert version.content_sha256 == sha256_text(REGULATION) != sha256_text("")
    assert version.document.title == "贷款管理办法"  # the first heading, not "loan-policy-v1"

    # The version page shows that text and the hashes of what was stored.
    page = client.get(reverse("knowledge:version", args=[version.document_id, 1])).content.decode()
    assert "第一章 总则" in page and version.file_sha256 in page and version.content_sha256 in page
    assert sha256_text("") not in page
    # The API shows the content, not "".
    api = client.get(f"/api/versions/{version.pk}/").json()
    assert api["content"] == REGULATION and api["text"] == REGULATION and api["text_source"] == "content"
    assert api["content_sha256"] == sha256_text(REGULATION)

    # Ingestion cleans what goes into the chunks, and leaves the content alone.
    assert ingest(version.pk).status == IngestionStatus.INDEXED
    assert Chunk.objects.filter(version=version).exists()
    assert DocumentVersion.objects.get(pk=version.pk).content == REGULATION


@pytest.mark.parametrize("encoding", ["gbk", "big5", "utf-8"])
def test_text_uploads_are_decoded_like_ingestion_and_kept(client_for, people, kb, encoding):
    text = "繁體中文文件\n第一條 總則。\n" if encoding == "big5" else "第一章 总则\n第一条 贷款须经审批。\n"
    upload = SimpleUploadedFile("rules.txt", text.encode(encoding))
    response = _upload_page(client_for(people["credit_manager"]), kb, [upload])
    assert response.status_code == 200
    assert DocumentVersion.objects.get(document__knowledge_base=kb).content == text


def test_a_pdf_is_titled_from_its_metadata_and_its_version_shows_the_extracted_text_labelled(client_for, people, kb):
    client = client_for(people["credit_manager"])
    pdf = make_pdf("Loans are approved by two officers.", title="Credit Handbook 2024")
    _upload_page(client, kb, [SimpleUploadedFile("handbook-scan-0042.pdf", pdf)])
    version = DocumentVersion.objects.get(document__knowledge_base=kb)
    assert version.document.title == "Credit Handbook 2024"
    ingest(version.pk)
    page = client.get(reverse("knowledge:version", args=[version.document_id, 1])).content.decode()
    assert "Loans are approved by two officers." in page
    assert 'id="extracted-note"' in page and version.file_sha256 in page
    assert sha256_text("") not in page  # no hash of an empty text
    api = client.get(f"/api/versions/{version.pk}/").json()
    assert api["text_source"] == "extracted" and "two officers" in api["text"]
    assert api["file_sha256"] == version.file_sha256


def test_a_file_without_a_heading_keeps_its_file_name_and_a_new_version_does_not_rename(client_for, people, kb):
    client = client_for(people["credit_manager"])
    _upload_page(client, kb, [SimpleUploadedFile("loan-rates.txt", "Rates rise by 0.25 points.\n".encode())])
    document = Document.objects.get(knowledge_base=kb)
    assert document.title == "loan-rates"
    response = _upload_page(
        client, kb, [SimpleUploadedFile("other.md", "# A different heading\n\nRates fall.\n".encode())],
        document=document.pk,
    )
    assert response.status_code == 200
    document.refresh_from_db()
    assert document.latest_version.number == 2 and document.title == "loan-rates"
    assert document.latest_version.content == "# A different heading\n\nRates fall.\n"


def test_a_zip_lists_each_skipped_entry_and_why(client_for, people, kb):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("policy.md", "# Policy\n\nKept.\n")
        archive.writestr("../escape.md", "# Escape\n")
        archive.writestr("/etc/absolute.md", "# Absolute\n")
        archive.writestr("__MACOSX/._policy.md", "junk")
        archive.writestr(".hidden.md", "# Hidden\n")
    upload = SimpleUploadedFile("bundle.zip", buffer.getvalue())
    response = _upload_page(client_for(people["credit_manager"]), kb, [upload])
    page = response.content.decode()
    assert response.status_code == 200
    assert list(Document.objects.filter(knowledge_base=kb).values_list("title", flat=True)) == ["Policy"]
    assert page.count('data-outcome="skipped"') == 4
    for name in ("../escape.md", "/etc/absolute.md", "__MACOSX/._policy.md", ".hidden.md"):
        assert name in page
    assert page.count("its path leaves the archive") == 2


def test_one_line_of_megabytes_is_cut_to_the_chunk_size_with_true_token_counts(people, kb, settings):
    settings.UPLOAD_MAX_BYTES = 8 * 1024 * 1024
    line = "loan" * 300_000  # 1.2 MB, one line, no spaces: one "word" to a WordPiece tokenizer
    outcome = upload_files(
        actor=people["credit_manager"], knowledge_base=kb, files=[SimpleUploadedFile("one-line.txt", line.encode())]
    )[0]
    assert ingest(outcome.version.pk).status == IngestionStatus.INDEXED
    count = embedding.token_counter(embedding.active_space().model_path)
    chunks = list(Chunk.objects.filter(version=outcome.version).order_by("index"))
    limit = kb.chunk_settings.get("chunk_tokens", 256) if kb.chunk_settings else 256
    assert len(chunks) > 100
    assert all(len(chunk.text) <= limit * 16 for chunk in chunks)
    assert all(chunk.token_count == count(chunk.text) <= limit for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == line  # nothing lost (no overlap inside one word)


def test_binary_uploads_stream_to_storage(people, kb, settings, tmp_path):
    """A 24 MB upload is hashed and stored chunk by chunk: far less than its size in memory."""
    settings.UPLOAD_MAX_BYTES = 64 * 1024 * 1024
    size = 24 * 1024 * 1024
    upload = TemporaryUploadedFile("ledger.csv", "text/csv", size, "utf-8")
    row = b"2024-03-01,branch 12,loan,35000.00\n"
    upload.write(row * (size // len(row)))
    upload.flush()
    upload.size = upload.tell()
    upload.seek(0)
    tracemalloc.start()
    try:
        outcome = upload_files(actor=people["credit_manager"], knowledge_base=kb, files=[upload])[0]
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        upload.close()
    except FileNotFoundError:
        pass  # the storage moved the temporary file into place: no copy at all
    assert outcome.status == "created"
    assert outcome.version.file_size == upload.size
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {upload.size}-byte upload"


# --- the editor's text uploads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "text"),
    [("big5", "繁體中文文件\n第一條 總則。\n"), ("gbk", "第一章 总则\n第一条 贷款须经审批。\n"), ("utf-8", "第一章 总则\n")],
)
def test_editor_text_upload_decodes_big5_gbk_and_utf8(client_for, people, kb, encoding, text):
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_create", args=[kb.pk]),
        {"title": f"Upload {encoding}", "content": "", "file": SimpleUploadedFile("notes.txt", text.encode(encoding))},
    )
    assert response.status_code == 302
    assert Document.objects.get(title=f"Upload {encoding}").latest_version.content == text


def test_editor_refuses_undecodable_bytes_instead_of_mojibake(client_for, people, kb):
    junk = b"\xfe\x50\xfe\x51\x81\x30\x81\x30" * 30  # GB18030 decodes it, to characters nobody wrote
    response = client_for(people["credit_manager"]).post(
        reverse("knowledge:document_create", args=[kb.pk]),
        {"title": "Junk", "content": "", "file": SimpleUploadedFile("notes.txt", junk)},
    )
    assert response.status_code == 400
    assert "could not be recognized" in response.content.decode()
    assert not Document.objects.filter(title="Junk").exists()
