import io
import zipfile

import pytest

from knowledge.ingestion import IngestionError, decode_text, detect

from .conftest import make_pdf

SIMPLIFIED = [
    "本公司于2024年3月1日发布年度报告，营业收入同比增长百分之五。",
    "第一章 总则\n第一条 为规范贷款管理，制定本办法。",
    "简体中文测试文本",
    "贷款利率",
    "你好",
]
TRADITIONAL = [
    "請於下週一前提交申請表格，謝謝合作。",
    "會議記錄：討論預算與人事安排。",
    "臺灣銀行股份有限公司",
    "銀行",
    "資料",
]


@pytest.mark.parametrize("text", SIMPLIFIED + TRADITIONAL)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_decodes_utf8_and_gb_encodings(text, encoding):
    decoded, found = decode_text(text.encode(encoding))
    assert decoded == text
    if encoding.startswith("gb"):
        assert found in ("gbk", "gb18030")


@pytest.mark.parametrize("text", TRADITIONAL)
def test_tells_big5_from_gbk_on_short_texts(text):
    decoded, found = decode_text(text.encode("big5"))
    assert (decoded, found) == (text, "big5")


def test_gb18030_only_characters_are_decoded():
    text = "欧元符号€与扩展字符㐀，出现在文本中。"
    decoded, found = decode_text(text.encode("gb18030"))
    assert decoded == text
    assert found == "gb18030"


def test_binary_renamed_txt_is_refused():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    with pytest.raises(IngestionError) as error:
        detect(png, "notes.txt")
    assert error.value.code == "binary_as_text"
    with pytest.raises(IngestionError) as error:
        detect(b"\x00\x01\x02\x03" * 100, "data.csv")
    assert error.value.code == "binary_as_text"
    with pytest.raises(IngestionError) as error:
        detect(make_pdf(), "report.md")
    assert error.value.code == "binary_as_text"


def test_pdf_named_docx_is_a_type_mismatch():
    with pytest.raises(IngestionError) as error:
        detect(make_pdf(), "contract.docx")
    assert error.value.code == "type_mismatch"
    assert "PDF" in str(error.value) and "contract.docx" in str(error.value)


def test_text_named_pdf_and_xlsx_named_docx_are_mismatches():
    import openpyxl

    with pytest.raises(IngestionError) as error:
        detect(b"just some text", "report.pdf")
    assert error.value.code == "type_mismatch"
    buffer = io.BytesIO()
    openpyxl.Workbook().save(buffer)
    with pytest.raises(IngestionError) as error:
        detect(buffer.getvalue(), "letter.docx")
    assert error.value.code == "type_mismatch"
    assert detect(buffer.getvalue(), "sheet.xlsx") == "xlsx"


def test_unknown_extension_is_unsupported_and_no_extension_trusts_content():
    with pytest.raises(IngestionError) as error:
        detect(b"hello", "program.exe")
    assert error.value.code == "unsupported_type"
    assert detect(make_pdf(), "README") == "pdf"
    assert detect("你好".encode("gbk"), "NOTES") == "text"


def test_plain_zip_and_html_are_recognized():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    assert detect(buffer.getvalue(), "bundle.zip") == "zip"
    assert detect(b"<!DOCTYPE html><html><body>x</body></html>", "page.htm") == "html"
    # HTML saved as .txt is the user's choice: it is read as text.
    assert detect(b"<html><body>x</body></html>", "page.txt") == "text"
