"""Turn an uploaded file's bytes into structured blocks: the first stage of ingestion.

Pure functions of (bytes, filename, limits): no models, no storage, no Celery.
"""

import csv
import datetime
import io
import re
import warnings
import zipfile
from pathlib import PurePosixPath

import docx
import lxml.etree
import lxml.html
import openpyxl
from docx.oxml.ns import qn
from docx.table import Table
from pypdf import PasswordType, PdfReader

from .archive import ZipLimits, check_zip, is_safe_member, member_name, member_skip_reason
from .blocks import Block, ExtractedDocument, markdown_header, markdown_row, render_markdown
from .clean import remove_page_furniture
from .detect import KIND_LABELS, decode_text, detect
from .errors import IngestionError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SENTENCE_END = tuple("。！？；：.!?;:」』”）)")
_CHINESE_HEADING = re.compile(r"^\s*(第[一二三四五六七八九十百千零〇两\d]+\s*([章篇编部节]))\s*\S.{0,40}$")


def extract(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
) -> ExtractedDocument:
    """Read one file. Raises IngestionError with a stable code for every refused input."""
    name = _base_name(filename)
    _check_size(data, name, max_bytes)
    kind = detect(data, filename)
    if kind == "zip":
        raise IngestionError(
            "unsupported_type",
            name=name,
            message="{name} is an archive: unpack it with extract_archive and ingest each file.",
        )
    reader = _READERS[kind]
    limits = ZipLimits(max_uncompressed_bytes=max_uncompressed_bytes)
    try:
        blocks, meta = reader(data, name, limits)
    except IngestionError:
        raise
    except Exception as error:  # noqa: BLE001 - any parser failure on foreign bytes is a corrupt file
        raise IngestionError("corrupt_file", name=name) from error
    blocks = [block for block in blocks if block.text.strip()]
    if not blocks:
        raise IngestionError("empty", name=name)
    meta = {"format": kind, **meta}
    return ExtractedDocument(markdown=render_markdown(blocks), blocks=blocks, meta=meta)


def extract_archive(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_members: int = 1000,
    skipped: list[tuple[str, str]] | None = None,
) -> list[tuple[str, bytes]]:
    """Unpack a .zip of documents into (inner name, bytes), refusing zip bombs.

    Folders, hidden files, macOS resource forks and unsafe paths are skipped, each appended to
    ``skipped`` as (inner name, reason from archive.member_skip_reason); nested archives are
    returned like any member (extract() refuses them).
    """
    name = _base_name(filename)
    _check_size(data, name, max_bytes)
    kind = detect(data, filename)
    if kind != "zip":
        raise IngestionError("type_mismatch", name=name, declared="ZIP archive", actual=KIND_LABELS.get(kind, kind))
    limits = ZipLimits(max_uncompressed_bytes=max_uncompressed_bytes, max_members=max_members)
    members = check_zip(data, limits=limits, name=name, keep=lambda info: is_safe_member(info.filename))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    names = {info.filename: member_name(info) for info in infos}
    if skipped is not None:
        for info in infos:
            reason = None if info.is_dir() else member_skip_reason(info.filename)
            if reason is not None:
                skipped.append((names[info.filename], reason))
    return [(names[inner], content) for inner, content in members.items()]


def _base_name(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).name


def _check_size(data: bytes, name: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise IngestionError("too_large", name=name, size=len(data), limit=max_bytes)
    if not data.strip():
        raise IngestionError("empty", name=name)


# ---------------------------------------------------------------------------------------------
# PDF


def _read_pdf(data: bytes, name: str, limits: ZipLimits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Owner-password-only PDFs open with an empty user password; others cannot be read.
            try:
                opened = reader.decrypt("")
            except Exception as error:  # noqa: BLE001 - unsupported cipher counts as locked
                raise IngestionError("encrypted_pdf", name=name) from error
            if opened == PasswordType.NOT_DECRYPTED:
                raise IngestionError("encrypted_pdf", name=name)
        pages = [(page.extract_text() or "").splitlines() for page in reader.pages]
    if not pages:
        raise IngestionError("corrupt_file", name=name)
    if not any(line.strip() for lines in pages for line in lines):
        raise IngestionError("no_text_layer", name=name)
    pages = remove_page_furniture(pages)
    blocks: list[Block] = []
    headings = _HeadingTracker()
    for number, lines in enumerate(pages, start=1):
        for text, is_heading, level in _paragraphs_from_lines(lines):
            if is_heading:
                blocks.append(headings.heading(text, level, {"page": number}))
            else:
                blocks.append(Block("paragraph", text, headings.path(), {"page": number}))
    return blocks, {"pages": len(pages)}


def _paragraphs_from_lines(lines: list[str]):
    """Join wrapped lines back into paragraphs; yield (text, is_heading, level)."""
    stripped = [line.strip() for line in lines]
    widths = sorted(len(line) for line in stripped if line)
    typical = widths[int(len(widths) * 0.8)] if widths else 0
    current: list[str] = []
    for line in stripped + [""]:
        heading = _CHINESE_HEADING.match(line) if line else None
        if not line or heading or _is_bullet(line):
            if current:
                yield _join_lines(current), False, 0
                current = []
            if heading:
                yield line, True, 2 if heading.group(2) == "节" else 1
                continue
            if line:
                current.append(line)
            continue
        current.append(line)
        # A line that ends a sentence and stops short of the margin ends its paragraph.
        if line.endswith(_SENTENCE_END) and len(line) < typical * 0.85:
            yield _join_lines(current), False, 0
            current = []


def _is_bullet(line: str) -> bool:
    return bool(re.match(r"^(?:[•·▪●◦\-*]|\d{1,2}[.、)]|[（(]\d{1,2}[)）])\s*\S", line))


def _join_lines(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and line[:1].islower():
            text = text[:-1] + line
        elif _CJK_CHAR.match(text[-1:]) or _CJK_CHAR.match(line[:1]) or text[-1:] in "，。；：！？、":
            text += line
        else:
            text += " " + line
    return text


class _HeadingTracker:
    def __init__(self):
        self._stack: list[tuple[int, str]] = []

    def heading(self, text: str, level: int, position: dict) -> Block:
        level = max(1, level)
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        return Block("heading", text, self.path(), position, level=level)

    def path(self) -> list[str]:
        return [text for _, text in self._stack]


# ---------------------------------------------------------------------------------------------
# DOCX


def _read_docx(data: bytes, name: str, limits: ZipLimits):
    check_zip(data, limits=limits, name=name, keep=lambda info: False)
    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []
    headings = _HeadingTracker()
    paragraph_number = table_number = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            table_number += 1
            blocks.extend(_docx_table(item, headings.path(), table_number))
            continue
        paragraph_number += 1
        text = " ".join(item.text.split()) if "\n" not in item.text else item.text.strip()
        if not text:
            continue
        position = {"paragraph": paragraph_number}
        level = _docx_heading_level(item)
        if level:
            blocks.append(headings.heading(text, level, position))
        elif _docx_is_list(item):
            blocks.append(Block("list_item", text, headings.path(), position))
        else:
            blocks.append(Block("paragraph", text, headings.path(), position))
    return blocks, {"paragraphs": paragraph_number, "tables": table_number}


def _docx_heading_level(paragraph) -> int:
    style = paragraph.style
    while style is not None:
        style_name = (style.name or "") + " " + (style.style_id or "")
        if re.search(r"(?i)\btitle\b|^标题\s", style_name) and not re.search(r"\d", style_name):
            return 1
        match = re.search(r"(?i)(?:heading|标题)\s*(\d)", style_name)
        if match:
            return int(match.group(1))
        style = style.base_style
    properties = paragraph._p.pPr
    if properties is not None:
        outline = properties.find(qn("w:outlineLvl"))
        if outline is not None and outline.get(qn("w:val"), "9").isdecimal():
            level = int(outline.get(qn("w:val"))) + 1
            if level <= 6:
                return level
    return 0


def _docx_is_list(paragraph) -> bool:
    if "list" in (paragraph.style.name or "").lower():
        return True
    properties = paragraph._p.pPr
    return properties is not None and properties.find(qn("w:numPr")) is not None


def _docx_table(table, heading_path: list[str], number: int) -> list[Block]:
    rows: list[list[str]] = []
    for row in table.rows:
        cells, seen = [], None
        for cell in row.cells:
            if cell._tc is seen:
                continue  # a merged cell repeats for every grid column it spans
            seen = cell._tc
            cells.append(" ".join(cell.text.split()))
        rows.append(cells)
    return _table_blocks(rows, heading_path, lambda index: {"table": number, "row": index})


def _table_blocks(rows: list[list[str]], heading_path: list[str], position_of, first_row: int = 1) -> list[Block]:
    """Rows (first non-empty one is the header) as table_row blocks sharing a Markdown header."""
    indexed = [(first_row + offset, row) for offset, row in enumerate(rows) if any(str(cell).strip() for cell in row)]
    if not indexed:
        return []
    width = max(_last_filled(row) for _, row in indexed)
    header_index, header = indexed[0]
    header_cells = _pad(header, width)
    table_header = markdown_header(header_cells)
    if len(indexed) == 1:
        return [Block("table_row", markdown_row(header_cells), list(heading_path), position_of(header_index))]
    return [
        Block("table_row", markdown_row(_pad(row, width)), list(heading_path), position_of(index), table_header)
        for index, row in indexed[1:]
    ]


def _last_filled(row) -> int:
    for index in range(len(row), 0, -1):
        if str(row[index - 1]).strip():
            return index
    return 0


def _pad(row, width: int) -> list[str]:
    cells = [str(cell) for cell in row[:width]]
    return cells + [""] * (width - len(cells))


# ---------------------------------------------------------------------------------------------
# XLSX and CSV


def _read_xlsx(data: bytes, name: str, limits: ZipLimits):
    check_zip(data, limits=limits, name=name, keep=lambda info: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    blocks: list[Block] = []
    try:
        for sheet in workbook.worksheets:
            rows: list[tuple[int, list[str]]] = []
            for cells in sheet.iter_rows():
                values = [_cell_text(cell.value) for cell in cells if getattr(cell, "column", None)]
                row_number = next((cell.row for cell in cells if getattr(cell, "row", None)), None)
                if row_number is not None and any(values):
                    rows.append((row_number, _columns_in_place(cells, values)))
            if not rows:
                continue
            title = sheet.title
            heading = Block("heading", title, [title], {"sheet": title}, level=1)
            table = _table_rows_numbered(rows, [title], lambda row: {"sheet": title, "row": row})
            blocks.append(heading)
            blocks.extend(table)
    finally:
        workbook.close()
    return blocks, {"sheets": len(workbook.sheetnames)}


def _columns_in_place(cells, values: list[str]) -> list[str]:
    """Place each value in its column, so that a row starting in column C keeps A and B empty."""
    placed: list[str] = []
    for cell, value in zip([cell for cell in cells if getattr(cell, "column", None)], values):
        while len(placed) < cell.column - 1:
            placed.append("")
        placed.append(value)
    return placed


def _table_rows_numbered(rows: list[tuple[int, list[str]]], heading_path, position_of) -> list[Block]:
    width = max(_last_filled(row) for _, row in rows)
    header_cells = _pad(rows[0][1], width)
    table_header = markdown_header(header_cells) if len(rows) > 1 else None
    body = rows[1:] or rows[:1]
    return [
        Block("table_row", markdown_row(_pad(row, width)), list(heading_path), position_of(number), table_header)
        for number, row in body
    ]


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value).strip()


def _read_csv(data: bytes, name: str, limits: ZipLimits):
    text, encoding = decode_text(data, name)
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text), dialect), start=1)]
    rows = [(number, [cell.strip() for cell in row]) for number, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return [], {"encoding": encoding}
    return _table_rows_numbered(rows, [], lambda row: {"row": row}), {"encoding": encoding}


# ---------------------------------------------------------------------------------------------
# Markdown and plain text


def _read_markdown(data: bytes, name: str, limits: ZipLimits):
    text, encoding = decode_text(data, name)
    return parse_markdown(text), {"encoding": encoding}


def parse_markdown(text: str) -> list[Block]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    headings = _HeadingTracker()
    paragraph: list[str] = []
    paragraph_line = 0
    index = 0

    def flush():
        nonlocal paragraph
        if paragraph:
            blocks.append(Block("paragraph", _join_lines(paragraph), headings.path(), {"line": paragraph_line}))
            paragraph = []

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        number = index + 1
        fence = re.match(r"^\s*(```+|~~~+)", line)
        if fence:
            flush()
            marker = fence.group(1)
            body = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                body.append(lines[index])
                index += 1
            blocks.append(Block("code", "\n".join(body).strip("\n"), headings.path(), {"line": number}))
            index += 1
            continue
        atx = re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if atx:
            flush()
            blocks.append(headings.heading(atx.group(2), len(atx.group(1)), {"line": number}))
            index += 1
            continue
        if stripped and paragraph and re.match(r"^\s{0,3}(=+|-+)\s*$", line) and len(paragraph) == 1:
            level = 1 if stripped.startswith("=") else 2
            title = paragraph[0]
            paragraph = []
            blocks.append(headings.heading(title, level, {"line": paragraph_line}))
            index += 1
            continue
        if stripped.startswith("|") and index + 1 < len(lines) and re.match(r"^\s*\|?\s*:?-{2,}", lines[index + 1]):
            flush()
            header = _split_markdown_row(stripped)
            rows = []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append((index + 1, _split_markdown_row(lines[index].strip())))
                index += 1
            table = _table_rows_numbered([(number, header), *rows], headings.path(), lambda row: {"line": row})
            blocks.extend(table)
            continue
        item = re.match(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(.*)$", line)
        if item and not re.match(r"^\s*([-*_])\s*(\1\s*){2,}$", line):
            flush()
            blocks.append(Block("list_item", item.group(1).strip(), headings.path(), {"line": number}))
            index += 1
            continue
        if not stripped or re.match(r"^\s*([-*_])\s*(\1\s*){2,}$", line):
            flush()
        else:
            if not paragraph:
                paragraph_line = number
            paragraph.append(stripped.lstrip("> ").strip() if stripped.startswith(">") else stripped)
        index += 1
    flush()
    return blocks


def _split_markdown_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _read_text(data: bytes, name: str, limits: ZipLimits):
    text, encoding = decode_text(data, name)
    return parse_plain_text(text), {"encoding": encoding}


def parse_plain_text(text: str) -> list[Block]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # With blank lines between paragraphs, single newlines are wrapping; without, each line stands alone.
    wrapped = sum(1 for line in lines if not line.strip()) > 0
    blocks: list[Block] = []
    headings = _HeadingTracker()
    current: list[str] = []
    start = 0

    def flush():
        nonlocal current
        if current:
            blocks.append(Block("paragraph", _join_lines(current), headings.path(), {"line": start}))
            current = []

    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        heading = _CHINESE_HEADING.match(stripped) if stripped else None
        if heading:
            flush()
            blocks.append(headings.heading(stripped, 2 if heading.group(2) == "节" else 1, {"line": number}))
            continue
        if not stripped:
            flush()
            continue
        if not current:
            start = number
        current.append(stripped)
        if not wrapped:
            flush()
    flush()
    return blocks


# ---------------------------------------------------------------------------------------------
# HTML

_DROP_TAGS = (
    "script", "style", "noscript", "template", "iframe", "svg", "canvas", "nav", "header", "footer",
    "aside", "form", "button", "select", "input", "textarea", "object", "embed", "dialog", "menu",
)  # fmt: skip
_BOILERPLATE = re.compile(
    r"(?i)(?:^|[\s_-])(nav|navbar|menu|breadcrumbs?|sidebar|footer|header|masthead|banner|cookie|consent|"
    r"advert|ads?|promo|share|social|related|comments?|subscribe|newsletter|popup|modal|toolbar|pagination)(?:$|[\s_-])"
)
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "blockquote", "pre", "li", "ul", "ol", "dl", "dt", "dd",
               "table", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption", "address", "details", "summary",
               "center", "body", "tr", "td", "th", "tbody", "thead", "tfoot", "caption", "hr", "br"}  # fmt: skip


def _read_html(data: bytes, name: str, limits: ZipLimits):
    text, encoding = _decode_html(data, name)
    return parse_html(text), {"encoding": encoding}


def _decode_html(data: bytes, name: str) -> tuple[str, str]:
    declared = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", data[:4096], re.I)
    if declared:
        encoding = declared.group(1).decode("ascii").lower()
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data, name)


def parse_html(text: str) -> list[Block]:
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    root = lxml.html.document_fromstring(text)
    for element in list(root.iter(lxml.etree.Comment, lxml.etree.ProcessingInstruction)):
        _drop(element)
    main = _main_element(root)
    for element in list(main.iter(*_DROP_TAGS)):
        _drop(element)
    for element in list(main.iter()):
        if element is main or not isinstance(element.tag, str) or element.getparent() is None:
            continue
        if _is_hidden(element) or _is_boilerplate(element):
            _drop(element)
    blocks: list[Block] = []
    _walk_html(main, _HeadingTracker(), blocks, [0])
    return blocks


def _drop(element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    # Keep the text that follows the element (its tail), which belongs to the parent.
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _is_hidden(element) -> bool:
    style = (element.get("style") or "").replace(" ", "").lower()
    return (
        element.get("hidden") is not None
        or element.get("aria-hidden") == "true"
        or "display:none" in style
        or "visibility:hidden" in style
    )


def _is_boilerplate(element) -> bool:
    if element.tag in ("main", "article", "body", "html"):
        return False
    role = (element.get("role") or "").lower()
    if role in ("navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"):
        return True
    label = f"{element.get('class') or ''} {element.get('id') or ''}"
    if not _BOILERPLATE.search(label):
        return False
    # A container that holds most of the text is content, whatever its class says.
    return element.find(".//article") is None and element.find(".//main") is None


def _main_element(root):
    for path in ("//main", "//*[@role='main']"):
        found = root.xpath(path)
        if found:
            return max(found, key=_text_length)
    articles = root.xpath("//article")
    if articles:
        return max(articles, key=_text_length)
    # Densest block: the element whose own paragraphs hold the most text, links discounted.
    body = root.find("body")
    body = body if body is not None else root
    scores: dict = {}
    for paragraph in body.iter("p", "pre", "td", "blockquote", "li"):
        parent = paragraph.getparent()
        if parent is None:
            continue
        length = _text_length(paragraph) - 2 * sum(_text_length(link) for link in paragraph.iter("a"))
        if length < 20:
            continue
        scores[parent] = scores.get(parent, 0) + length
        grandparent = parent.getparent()
        if grandparent is not None:
            scores[grandparent] = scores.get(grandparent, 0) + length / 2
    if not scores:
        return body
    best = max(scores, key=scores.get)
    return best if _text_length(best) >= 0.3 * _text_length(body) or scores[best] > 200 else body


def _text_length(element) -> int:
    return len("".join(element.itertext()).strip())


def _walk_html(element, headings: "_HeadingTracker", blocks: list[Block], counter: list[int]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    position = lambda: {"block": counter[0]}  # noqa: E731
    if re.fullmatch(r"h[1-6]", tag):
        text = _inline_text(element)
        if text:
            counter[0] += 1
            blocks.append(headings.heading(text, int(tag[1]), position()))
        return
    if tag == "table":
        rows = []
        for row in element.iter("tr"):
            rows.append([_inline_text(cell) for cell in row if isinstance(cell.tag, str) and cell.tag in ("td", "th")])
        counter[0] += 1
        number = counter[0]
        blocks.extend(_table_blocks(rows, headings.path(), lambda index: {"block": number, "row": index}))
        return
    if tag == "pre":
        text = "".join(element.itertext()).strip("\n")
        if text.strip():
            counter[0] += 1
            blocks.append(Block("code", text, headings.path(), position()))
        return
    nested = any(isinstance(child.tag, str) and child.tag in ("ul", "ol", "p", "div") for child in element)
    if tag == "li" and not nested:
        text = _inline_text(element)
        if text:
            counter[0] += 1
            blocks.append(Block("list_item", text, headings.path(), position()))
        return
    if not any(isinstance(child.tag, str) and child.tag in _BLOCK_TAGS for child in element):
        text = _inline_text(element)
        if text:
            counter[0] += 1
            blocks.append(Block("paragraph", text, headings.path(), position()))
        return
    # Mixed content: loose text between block children becomes its own paragraphs.
    loose: list[str] = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and child.tag in _BLOCK_TAGS:
            _emit_loose(loose, headings, blocks, counter)
            _walk_html(child, headings, blocks, counter)
            loose = [child.tail or ""]
        else:
            loose.append(_inline_text(child) if isinstance(child.tag, str) else "")
            loose.append(child.tail or "")
    _emit_loose(loose, headings, blocks, counter)


def _emit_loose(loose: list[str], headings, blocks: list[Block], counter: list[int]) -> None:
    text = " ".join("".join(loose).split())
    if text:
        counter[0] += 1
        blocks.append(Block("paragraph", text, headings.path(), {"block": counter[0]}))
    loose.clear()


def _inline_text(element) -> str:
    text = " ".join("".join(element.itertext()).split())
    # Inline tags around Chinese text leave spaces that were never there.
    return re.sub(f"(?<=[{_CJK}，。；：！？、]) (?=[{_CJK}，。；：！？、])", "", text)


_READERS = {
    "pdf": _read_pdf,
    "docx": _read_docx,
    "xlsx": _read_xlsx,
    "csv": _read_csv,
    "html": _read_html,
    "markdown": _read_markdown,
    "text": _read_text,
}
