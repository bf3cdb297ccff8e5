import datetime
import io
import zipfile

import docx
import openpyxl
import pytest
from pypdf import PdfReader, PdfWriter

from knowledge.ingestion import IngestionError, extract

from .conftest import PAGE_TEXTS, make_image_pdf, make_pdf


def error_code(data: bytes, filename: str, **limits) -> str:
    with pytest.raises(IngestionError) as error:
        extract(data, filename, **limits)
    assert str(error.value)  # every refusal has a message for people
    return error.value.code


# -- PDF ---------------------------------------------------------------------------------------


def test_pdf_text_layer_by_page_without_running_header_and_page_numbers(pdf_bytes):
    document = extract(pdf_bytes, "annual.pdf")
    assert document.meta == {"format": "pdf", "pages": 3}
    assert [block.position for block in document.blocks] == [{"page": 1}, {"page": 2}, {"page": 3}]
    assert [block.text for block in document.blocks] == PAGE_TEXTS
    assert "ACME Corp Annual Report" not in document.markdown
    assert "Page 2 of 3" not in document.markdown


def encrypt(data: bytes, *, user_password: str, algorithm: str) -> bytes:
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(data)).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_encrypted_pdf_is_refused(pdf_bytes, algorithm):
    assert error_code(encrypt(pdf_bytes, user_password="secret", algorithm=algorithm), "locked.pdf") == "encrypted_pdf"


def test_pdf_with_only_an_owner_password_is_read(pdf_bytes):
    document = extract(encrypt(pdf_bytes, user_password="", algorithm="AES-256"), "restricted.pdf")
    assert document.blocks[0].text == PAGE_TEXTS[0]


def test_scanned_pdf_without_text_layer():
    assert error_code(make_image_pdf(), "scan.pdf") == "no_text_layer"


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9])
def test_truncated_pdf_is_corrupt(pdf_bytes, fraction):
    assert error_code(pdf_bytes[: int(len(pdf_bytes) * fraction)], "cut.pdf") == "corrupt_file"


# -- DOCX --------------------------------------------------------------------------------------


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("信贷管理办法", level=1)
    document.add_paragraph("为规范贷款管理，制定本办法。")
    document.add_heading("贷款审批", level=2)
    document.add_paragraph("贷款须经两级审批。")
    document.add_paragraph("提交申请", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, values in enumerate([["产品", "利率"], ["个人贷款", "3.5%"], ["企业贷款", "4.2%"]]):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    document.add_heading("附则", level=1)
    document.add_paragraph("本办法自发布之日起施行。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_headings_lists_and_tables():
    document = extract(make_docx(), "policy.docx")
    by_text = {block.text: block for block in document.blocks}
    assert by_text["贷款须经两级审批。"].heading_path == ["信贷管理办法", "贷款审批"]
    assert by_text["提交申请"].kind == "list_item"
    assert by_text["本办法自发布之日起施行。"].heading_path == ["附则"]
    rows = [block for block in document.blocks if block.kind == "table_row"]
    assert [row.text for row in rows] == ["| 个人贷款 | 3.5% |", "| 企业贷款 | 4.2% |"]
    assert rows[0].table_header == "| 产品 | 利率 |\n| --- | --- |"
    assert rows[0].position == {"table": 1, "row": 2}
    assert "## 贷款审批" in document.markdown
    assert "| 产品 | 利率 |\n| --- | --- |\n| 个人贷款 | 3.5% |" in document.markdown


def test_truncated_docx_is_corrupt():
    data = make_docx()
    assert error_code(data[: len(data) // 2], "policy.docx") == "corrupt_file"


def test_docx_with_broken_xml_is_corrupt():
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(make_docx())) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "word/document.xml":
                content = content[: len(content) // 2]
            target.writestr(info, content)
    assert error_code(buffer.getvalue(), "policy.docx") == "corrupt_file"


# -- XLSX and CSV ------------------------------------------------------------------------------


def make_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    rates = workbook.active
    rates.title = "利率表"
    rates.append(["产品", "利率", "生效日期"])
    rates.append(["个人贷款", 3.5, datetime.date(2024, 3, 1)])
    rates.append([None, None, None])
    rates.append(["企业贷款", 4, datetime.date(2024, 4, 1)])
    branches = workbook.create_sheet("Branches")
    branches["B2"] = "City"
    branches["C2"] = "Staff"
    branches["B3"] = "Shanghai"
    branches["C3"] = 120
    workbook.create_sheet("Empty")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_sheets_become_markdown_tables_with_row_positions():
    document = extract(make_xlsx(), "rates.xlsx")
    rows = [block for block in document.blocks if block.kind == "table_row"]
    assert [(row.text, row.position) for row in rows] == [
        ("| 个人贷款 | 3.5 | 2024-03-01 |", {"sheet": "利率表", "row": 2}),
        ("| 企业贷款 | 4 | 2024-04-01 |", {"sheet": "利率表", "row": 4}),
        ("|  | Shanghai | 120 |", {"sheet": "Branches", "row": 3}),
    ]
    assert rows[0].heading_path == ["利率表"]
    assert rows[0].table_header == "| 产品 | 利率 | 生效日期 |\n| --- | --- | --- |"
    assert [block.text for block in document.blocks if block.kind == "heading"] == ["利率表", "Branches"]
    assert "# 利率表\n\n| 产品 | 利率 | 生效日期 |\n| --- | --- | --- |\n| 个人贷款 | 3.5 | 2024-03-01 |" in document.markdown


def test_truncated_xlsx_is_corrupt():
    data = make_xlsx()
    assert error_code(data[: len(data) - 200], "rates.xlsx") == "corrupt_file"


def test_csv_in_gbk_with_semicolons():
    data = "产品;利率\n个人贷款;3.5%\n\n企业贷款;4.2%\n".encode("gbk")
    document = extract(data, "rates.csv")
    assert document.meta["encoding"] in ("gbk", "gb18030")
    rows = [(block.text, block.position) for block in document.blocks]
    assert rows == [("| 个人贷款 | 3.5% |", {"row": 2}), ("| 企业贷款 | 4.2% |", {"row": 4})]


# -- HTML, Markdown, text ----------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Loans</title><style>p {color: red}</style>
<script>var tracking = "do not index";</script></head>
<body>
<header class="site-header"><a href="/">Home</a> <a href="/about">About us</a></header>
<nav><ul><li><a href="/a">Menu one</a></li><li><a href="/b">Menu two</a></li></ul></nav>
<div class="layout">
  <div class="sidebar">Popular posts: nothing to see here</div>
  <div class="content">
    <h1>Loan policy</h1>
    <p>Every loan needs two <b>independent</b> approvals before it is granted to the customer.</p>
    <h2>Rates</h2>
    <p>The base rate is reviewed every quarter by the credit committee of the bank.</p>
    <table><tr><th>Product</th><th>Rate</th></tr><tr><td>Personal</td><td>3.5%</td></tr></table>
    <form><input name="q"><button>Search</button></form>
    <div style="display:none">hidden tracking text</div>
  </div>
</div>
<div class="cookie-banner">We use cookies.</div>
<footer>Copyright 2024 ACME</footer>
</body></html>"""


def test_html_main_content_without_boilerplate():
    document = extract(PAGE.encode(), "policy.html")
    text = document.markdown
    assert "Every loan needs two independent approvals" in text
    assert "| Personal | 3.5% |" in text
    for boilerplate in ("Home", "Menu one", "Popular posts", "cookies", "Copyright", "tracking", "Search", "color"):
        assert boilerplate not in text
    rates = next(block for block in document.blocks if block.text.startswith("The base rate"))
    assert rates.heading_path == ["Loan policy", "Rates"]


def test_html_prefers_main_element_and_reads_declared_gbk():
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"></head><body>'
        "<div>导航 首页 关于</div><main><h1>通知</h1><p>请于三月一日前提交材料。</p></main>"
        "<div>友情链接</div></body></html>"
    ).encode("gbk")
    document = extract(html, "notice.htm")
    assert [block.text for block in document.blocks] == ["通知", "请于三月一日前提交材料。"]


def test_html_densest_block_without_main_or_article():
    sentence = "of the real article text, long enough to count as content."
    paragraphs = "".join(f"<p>Paragraph {n} {sentence}</p>" for n in range(5))
    menu = "<div id='top'><a href='/'>Home</a> <a href='/x'>Links</a></div>"
    html = f"<html><body>{menu}<div>{paragraphs}</div><div>Share this</div></body></html>"
    document = extract(html.encode(), "page.html")
    assert [block.text.split(" of ")[0] for block in document.blocks] == [f"Paragraph {n}" for n in range(5)]


def test_markdown_headings_lists_tables_and_code():
    text = """# 总则

为规范管理，制定本办法。

## 范围
适用于全行。

- 第一项
- 第二项

| 项目 | 金额 |
|------|------|
| 甲 | 100 |

```python
print("hi")
```

Setext title
------------
Body under setext.
"""
    document = extract(text.encode(), "rules.md")
    kinds = [(block.kind, block.text, block.heading_path) for block in document.blocks]
    assert ("paragraph", "适用于全行。", ["总则", "范围"]) in kinds
    assert ("list_item", "第二项", ["总则", "范围"]) in kinds
    assert ("table_row", "| 甲 | 100 |", ["总则", "范围"]) in kinds
    assert ("code", 'print("hi")', ["总则", "范围"]) in kinds
    assert ("paragraph", "Body under setext.", ["总则", "Setext title"]) in kinds


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "big5"])
def test_plain_text_in_each_encoding(encoding):
    text = "第一章 總則\n本辦法適用於全體員工。\n第二章 附則\n本辦法自公布日施行。\n"
    document = extract(text.encode(encoding), "rules.txt")
    assert [(block.kind, block.text, block.heading_path) for block in document.blocks] == [
        ("heading", "第一章 總則", ["第一章 總則"]),
        ("paragraph", "本辦法適用於全體員工。", ["第一章 總則"]),
        ("heading", "第二章 附則", ["第二章 附則"]),
        ("paragraph", "本辦法自公布日施行。", ["第二章 附則"]),
    ]
    assert document.meta["encoding"].replace("-sig", "") in (encoding.replace("-sig", ""), "gbk", "gb18030")


def test_plain_text_joins_wrapped_lines_between_blank_lines():
    text = "The first paragraph is wrapped\nover two lines.\n\n第二段文字\n也被折行了。\n"
    document = extract(text.encode(), "notes.txt")
    assert [block.text for block in document.blocks] == [
        "The first paragraph is wrapped over two lines.",
        "第二段文字也被折行了。",
    ]


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t  ", "\u3000\u3000\n".encode(), b"\xef\xbb\xbf \n"])
def test_empty_or_whitespace_only(data):
    assert error_code(data, "empty.txt") == "empty"


def test_empty_docx_is_empty():
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    assert error_code(buffer.getvalue(), "blank.docx") == "empty"


def test_file_over_the_size_limit(pdf_bytes):
    with pytest.raises(IngestionError) as error:
        extract(pdf_bytes, "big.pdf", max_bytes=1000)
    assert error.value.code == "too_large"
    assert str(len(pdf_bytes)) in str(error.value)


def test_binary_renamed_txt_and_pdf_named_docx():
    assert error_code(b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "notes.txt") == "binary_as_text"
    assert error_code(make_pdf(), "contract.docx") == "type_mismatch"


def test_zip_passed_to_extract_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    assert error_code(buffer.getvalue(), "bundle.zip") == "unsupported_type"
