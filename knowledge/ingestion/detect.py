"""Tell a file's real type from its bytes, check it against the name, and decode text.

The extension says what the user claims; the magic bytes say what the file is. A file whose
claim and content disagree is refused rather than parsed by the wrong reader.
"""

import codecs
import io
import re
import zipfile
from pathlib import PurePosixPath

from .errors import IngestionError

# Extension -> the kind of reader that handles it.
EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".zip": "zip",
}
TEXT_KINDS = {"csv", "html", "markdown", "text"}
# Kinds whose bytes are what sniff() reports for them.
BINARY_KINDS = {"pdf", "docx", "xlsx", "zip"}

_BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\x7fELF", "executable"),
    (b"MZ", "executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Office document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"%!PS", "PostScript"),
    (b"RIFF", "media file"),
    (b"OggS", "media file"),
    (b"ID3", "audio file"),
)
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)

KIND_LABELS = {
    "pdf": "PDF",
    "docx": "Word DOCX",
    "xlsx": "Excel XLSX",
    "pptx": "PowerPoint PPTX",
    "zip": "ZIP archive",
    "text": "text",
    "html": "HTML",
}


def declared_kind(filename: str) -> str | None:
    return EXTENSIONS.get(PurePosixPath(filename.replace("\\", "/")).suffix.lower())


def sniff(data: bytes) -> tuple[str, str]:
    """Return (kind, label) read from the content: pdf, docx, xlsx, pptx, zip, binary or text."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf", KIND_LABELS["pdf"]
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        kind = _zip_kind(data)
        return kind, KIND_LABELS.get(kind, kind)
    for magic, label in _BINARY_MAGIC:
        if data.startswith(magic):
            return "binary", label
    if _looks_binary(data):
        return "binary", "binary data"
    if _HTML_START.match(_strip_bom(data[:4096])):
        return "html", KIND_LABELS["html"]
    return "text", KIND_LABELS["text"]


def detect(data: bytes, filename: str) -> str:
    """The reader to use for these bytes under this name, or an IngestionError."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    declared = declared_kind(filename)
    actual, label = sniff(data)
    if declared is None:
        if PurePosixPath(name).suffix:
            raise IngestionError("unsupported_type", name=name)
        # No extension at all: trust the content when it is a kind we read.
        if actual in BINARY_KINDS:
            return actual
        if actual in ("text", "html"):
            return actual
        raise IngestionError("unsupported_type", name=name)
    if declared in TEXT_KINDS:
        if actual not in ("text", "html"):
            raise IngestionError("binary_as_text", name=name, actual=label)
        return declared
    if actual == "zip-corrupt" and declared in ("docx", "xlsx", "zip"):
        raise IngestionError("corrupt_file", name=name)
    if actual != declared:
        raise IngestionError(
            "type_mismatch",
            name=name,
            declared=KIND_LABELS.get(declared, declared),
            actual=label,
        )
    return declared


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        # A zip that cannot even list its members: let the reader raise corrupt_file.
        return "zip-corrupt"
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "zip"


def _strip_bom(data: bytes) -> bytes:
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if data.startswith(bom):
            return data[len(bom) :]
    return data


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    if b"\x00" in sample:
        return True
    # Control bytes other than tab, newline, form feed, carriage return and escape are rare in text.
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13, 27))
    return controls > max(2, len(sample) // 100)


# ---------------------------------------------------------------------------------------------
# Text encodings


def decode_text(data: bytes, name: str = "") -> tuple[str, str]:
    """Decode text bytes, returning (text, encoding).

    UTF-8 and UTF-16 are recognised by BOM or by strict decoding. For the rest, Chinese legacy
    encodings are tried first: GBK/GB18030 and Big5 decode many of the same byte strings, so each
    candidate is scored by how many of its characters are common Chinese characters, which the
    wrong decoding almost never produces. Other encodings fall back to charset-normalizer.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        # A file cut in the middle of a multi-byte character is still UTF-8.
        if error.start >= len(data) - 3 and error.reason == "unexpected end of data":
            return data.decode("utf-8", errors="ignore"), "utf-8"
    best = None
    for encoding in ("gbk", "gb18030", "big5"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = chinese_score(text)
        if best is None or score > best[0]:
            best = (score, text, encoding)
    if best is not None and best[0] >= 0.6:
        return best[1], best[2]
    from charset_normalizer import from_bytes

    match = from_bytes(data).best()
    if match is None:
        raise IngestionError("undecodable_text", name=name)
    return str(match), match.encoding


def chinese_score(text: str) -> float:
    """Share of non-ASCII characters that are common Chinese characters or punctuation."""
    total = common = 0
    for char in text:
        if char < "\x80":
            continue
        total += 1
        if _is_common_cjk(char):
            common += 1
    return common / total if total else 1.0


_CJK_PUNCTUATION = set("，。！？；：、“”‘’（）《》〈〉【】「」『』—…·～　％")


def _is_common_cjk(char: str) -> bool:
    if char in _CJK_PUNCTUATION:
        return True
    # GB2312 level 1: the 3,755 most frequent simplified characters, rows 0xB0-0xD7.
    try:
        gb = char.encode("gb2312")
        if len(gb) == 2 and 0xB0 <= gb[0] <= 0xD7:
            return True
    except UnicodeEncodeError:
        pass
    # Big5 frequently used characters: 0xA440-0xC67E.
    try:
        big5 = char.encode("big5")
        if len(big5) == 2 and 0xA440 <= (big5[0] << 8 | big5[1]) <= 0xC67E:
            return True
    except UnicodeEncodeError:
        pass
    return False
