from knowledge.ingestion import chunk_blocks, clean_document, extract, extract_entities

from .conftest import make_pdf
from .test_extract import make_docx


def test_pdf_to_chunks_with_entities(count_tokens):
    document = clean_document(extract(make_pdf(), "annual.pdf"))
    chunks = chunk_blocks(document.blocks, count_tokens=count_tokens, chunk_tokens=32, overlap_tokens=4)
    assert chunks and all(chunk.token_count <= 32 for chunk in chunks)
    assert chunks[0].position == {"page": 1}
    entities = [entity for chunk in chunks for entity in extract_entities(chunk.text)]
    values = {(entity["type"], str(entity["value"])) for entity in entities}
    assert ("percentage", "3.5") in values
    assert ("date", "2024-03-01") in values
    assert ("amount", str({"amount": 3_500_000.0, "currency": "USD"})) in values


def test_docx_to_chunks_keeps_sections(count_tokens):
    document = clean_document(extract(make_docx(), "policy.docx"))
    chunks = chunk_blocks(document.blocks, count_tokens=count_tokens)
    assert [chunk.heading_path for chunk in chunks] == [
        ["信贷管理办法"],
        ["信贷管理办法", "贷款审批"],
        ["附则"],
    ]
    assert chunks[1].text.startswith("贷款审批\n贷款须经两级审批。\n\n提交申请\n\n| 产品 | 利率 |")
