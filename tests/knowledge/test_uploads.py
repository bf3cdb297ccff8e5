"""Uploads through knowledge.ingestion.uploads, then the pipeline: every format, every bad input, re-uploads."""

import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.ingestion import services as ingest_services
from knowledge.ingestion import selectors as ingest_selectors
from knowledge.models import Chunk, Document, DocumentVersion, IngestionStatus
from knowledge.services import document_submit
from knowledge.ingestion.uploads import upload_files
from tests.factories import KnowledgeBaseFactory, document
from tests.factories import ingest as run_ingestion

from .ingestion.conftest import make_image_pdf, make_pdf
from .ingestion.test_archive import make_zip
from .ingestion.test_extract import PAGE, encrypt, make_docx, make_xlsx

MB = 1024 * 1024


@pytest.fixture
def kb(credit):
    return KnowledgeBaseFactory(department=credit, review_required=False)


def upload(kb, user, name, data, **kwargs):
    return upload_files(actor=user, knowledge_base=kb, files=[SimpleUploadedFile(name, data)], **kwargs)


def ingest(version):
    return run_ingestion(version.pk)


def text_of(version):
    return "\n".join(Chunk.objects.filter(version=version).order_by("index").values_list("text", flat=True))


GOOD = [
    ("report.pdf", make_pdf, "Revenue grew by 3.5%", {"page": 1}),
    ("policy.docx", make_docx, "贷款须经两级审批", None),
    ("rates.xlsx", make_xlsx, "个人贷款", {"sheet": "利率表"}),
    ("rates.csv", lambda: "产品,利率\n个人贷款,3.5%\n企业贷款,4%\n".encode("gbk"), "企业贷款", None),
    ("page.html", lambda: PAGE.encode(), "two independent approvals", None),
    ("notes.md", lambda: b"# Notes\n\n## Deposits\n\nDeposits are insured up to 500,000 yuan.\n", "insured", None),
    ("utf8.txt", lambda: "存款保险制度保障储户的合法权益。".encode(), "存款保险制度", None),
    ("gbk.txt", lambda: "存款保险制度保障储户的合法权益，最高偿付限额为人民币五十万元。".encode("gbk"), "最高偿付限额", None),
    ("gb18030.txt", lambda: "㐀字属于扩展A区，存款保险制度保障储户的合法权益。".encode("gb18030"), "扩展A区", None),
    ("big5.txt", lambda: "存款保險制度保障存款人的合法權益，最高賠付限額為新臺幣三百萬元。".encode("big5"), "最高賠付限額", None),
]


@pytest.mark.parametrize(("name", "make", "expected", "position"), GOOD, ids=[item[0] for item in GOOD])
def test_each_format_becomes_a_document_with_its_original_file_and_chunks(kb, people, name, make, expected, position):
    data = make()
    [outcome] = upload(kb, people["credit_manager"], name, data)
    assert outcome.status == "created", outcome.message
    version = outcome.version
    assert version.file_name == name and version.file_size == len(data)
    assert len(version.file_sha256) == 64 and version.file_mime
    assert version.original_file.read() == data
    row = ingest(version)
    assert row.status == IngestionStatus.INDEXED, row.error_message
    assert expected in text_of(version)
    assert expected in ingest_selectors.version_text(version)  # the extracted Markdown is kept
    assert row.extracted_meta["format"]
    if position:
        first = Chunk.objects.filter(version=version).order_by("index").first()
        assert position.items() <= first.position.items()


def test_a_zip_of_several_files_becomes_several_documents(kb, people):
    data = make_zip(
        {"docs/a.md": b"# A\n\nAlpha text about loans.", "b.txt": "乙文件的内容。".encode(), "__MACOSX/._a.md": b"x"}
    )
    outcomes = upload(kb, people["credit_manager"], "bundle.zip", data)
    assert sorted(outcome.status for outcome in outcomes) == ["created", "created", "skipped"]
    outcomes = [outcome for outcome in outcomes if outcome.status == "created"]
    # "docs/a.md" is titled by its first heading; "b.txt" has none and keeps its path without the suffix.
    assert sorted(outcome.document.title for outcome in outcomes) == ["A", "b"]
    for outcome in outcomes:
        assert ingest(outcome.version).status == IngestionStatus.INDEXED


def zip_bomb_docx() -> bytes:
    import io

    buffer = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(make_docx()))
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("word/media/padding.bin", b"\x00" * (6 * MB))
    return buffer.getvalue()


BAD = [
    ("secret.pdf", lambda: encrypt(make_pdf(), user_password="pw", algorithm="AES-256"), "encrypted_pdf", "password"),
    ("broken.pdf", lambda: make_pdf()[:500], "corrupt_file", "damaged"),
    ("broken.docx", lambda: make_docx()[:2000], "corrupt_file", "damaged"),
    ("broken.xlsx", lambda: make_xlsx()[:2000], "corrupt_file", "damaged"),
    ("bomb.docx", zip_bomb_docx, "zip_bomb", "zip bomb"),
    ("scan.pdf", make_image_pdf, "no_text_layer", "text layer"),
    ("empty.txt", lambda: b"", "empty", "empty"),
    ("blank.md", lambda: b" \n\t\n  \r\n", "empty", "empty"),
    ("program.txt", lambda: bytes(range(256)) * 8, "binary_as_text", "binary"),
    ("report.docx", make_pdf, "type_mismatch", "PDF"),
]


@pytest.mark.parametrize(("name", "make", "code", "words"), BAD, ids=[item[0] for item in BAD])
def test_bad_input_ends_as_a_failed_version_and_the_live_version_stays_searchable(
    kb, people, settings, name, make, code, words
):
    settings.UPLOAD_MAX_BYTES = 1 * MB  # archives may expand to 4 MB
    manager = people["credit_manager"]
    doc = document(kb, manager, content="The live text about deposit insurance.")
    ingest(doc.latest_version)
    document_submit(actor=manager, document=doc)
    [outcome] = upload(kb, manager, name, make(), document=doc)
    assert outcome.status == "new_version", outcome.message
    document_submit(actor=manager, document=doc)  # v2 is live now, but not indexed
    row = ingest(outcome.version)
    assert row.status == IngestionStatus.FAILED
    assert row.error_code == code
    assert words.lower() in row.error_message.lower()
    assert not Chunk.objects.filter(version=outcome.version).exists()
    searchable = set(Chunk.objects.filter(document=doc, searchable=True).values_list("version__number", flat=True))
    assert searchable == {1}


def test_a_zip_bomb_archive_ends_as_a_failed_version(kb, people, settings):
    settings.UPLOAD_MAX_BYTES = 1 * MB
    data = make_zip({"big.txt": b"0" * (6 * MB)})
    assert len(data) < 100_000
    [outcome] = upload(kb, people["credit_manager"], "bomb.zip", data)
    assert outcome.status == "created"
    row = ingest(outcome.version)
    assert row.status == IngestionStatus.FAILED and row.error_code == "zip_bomb"
    assert not Chunk.objects.filter(version=outcome.version).exists()


def test_a_file_over_the_size_limit_is_refused_before_any_version(kb, people, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    [outcome] = upload(kb, people["credit_manager"], "big.txt", b"x" * 1001)
    assert outcome.status == "refused"
    assert "1001" in outcome.message and "1000" in outcome.message
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_a_file_that_became_too_large_for_the_limit_fails_in_the_pipeline(kb, people, settings):
    # A file version (the text of a .txt upload is its content, which has no file limit to meet).
    [outcome] = upload(kb, people["credit_manager"], "notes.csv", b"term,meaning\nrate,3.5%\n" * 100)
    settings.UPLOAD_MAX_BYTES = 1000  # lowered after the upload
    row = ingest(outcome.version)
    assert row.status == IngestionStatus.FAILED and row.error_code == "too_large"


def test_re_uploading_unchanged_content_creates_no_new_version(kb, people):
    manager = people["credit_manager"]
    data = make_pdf()
    [first] = upload(kb, manager, "report.pdf", data)
    [again] = upload(kb, manager, "report-copy.pdf", data)
    assert again.status == "unchanged" and again.document == first.document
    [same_target] = upload(kb, manager, "report.pdf", data, document=first.document)
    assert same_target.status == "unchanged"
    assert DocumentVersion.objects.filter(document__knowledge_base=kb).count() == 1
    [changed] = upload(kb, manager, "report.pdf", make_pdf(["A different first page about deposits."]),
                       document=first.document)
    assert changed.status == "new_version" and changed.version.number == 2


def test_several_files_at_once(kb, people):
    files = [SimpleUploadedFile("a.md", b"# A\n\nAlpha."), SimpleUploadedFile("b.md", b"# B\n\nBeta.")]
    outcomes = upload_files(actor=people["credit_manager"], knowledge_base=kb, files=files)
    assert [outcome.status for outcome in outcomes] == ["created", "created"]
    done = ingest_services.versions_ingest_run(version_ids=[outcome.version.pk for outcome in outcomes])
    assert len(done) == 2


def test_readers_cannot_upload(kb, people):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        upload(kb, people["credit_employee"], "a.md", b"# A\n\nAlpha.")
