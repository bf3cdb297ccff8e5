import io
import struct
import zipfile

import pytest

from knowledge.ingestion import IngestionError, extract, extract_archive

from .test_extract import make_docx, make_xlsx

MB = 1024 * 1024


def make_zip(members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(IngestionError) as error:
        call(*args, **kwargs)
    assert str(error.value)
    return error.value.code


def test_zip_of_several_files_is_unpacked_without_junk():
    data = make_zip(
        {
            "docs/policy.docx": make_docx(),
            "rates.xlsx": make_xlsx(),
            "说明.txt": "中文说明".encode("gbk"),
            "docs/": b"",
            "__MACOSX/docs/._policy.docx": b"junk",
            ".DS_Store": b"junk",
            "../escape.txt": b"nope",
        }
    )
    members = dict(extract_archive(data, "bundle.zip"))
    assert sorted(members) == ["docs/policy.docx", "rates.xlsx", "说明.txt"]
    assert extract(members["说明.txt"], "说明.txt").blocks[0].text == "中文说明"
    assert extract(members["docs/policy.docx"], "policy.docx").blocks[0].text == "信贷管理办法"


def test_gbk_member_names_from_windows_tools_are_repaired():
    # Windows zip tools store GBK bytes without the UTF-8 flag; zipfile reads them as cp437.
    gbk_name = "报告.txt".encode("gbk")
    data = make_zip({"XXXX.txt": "内容".encode()}).replace(b"XXXX.txt", gbk_name)
    assert [name for name, _ in extract_archive(data, "bundle.zip")] == ["报告.txt"]


def test_zip_bomb_over_total_limit_from_headers():
    data = make_zip({"a.txt": b"a" * (3 * MB), "b.txt": b"b" * (3 * MB)})
    assert len(data) < 50_000
    assert refusal(extract_archive, data, "bomb.zip", max_uncompressed_bytes=5 * MB) == "zip_bomb"


def test_zip_bomb_by_compression_ratio():
    data = make_zip({"zeros.txt": b"\x00" * (4 * MB)})
    assert refusal(extract_archive, data, "bomb.zip", max_uncompressed_bytes=100 * MB) == "zip_bomb"


def lie_about_size(data: bytes, declared: int) -> bytes:
    """Rewrite the uncompressed size in the local and central headers of a one-member zip."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, declared)
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, declared)
    return bytes(patched)


def test_zip_bomb_with_lying_headers_is_caught_while_streaming():
    # Text that compresses well but under the ratio limit, declared as 1 KB.
    content = b"".join(b"line %d of a long but harmless looking text file\n" % n for n in range(60_000))
    data = lie_about_size(make_zip({"notes.txt": content}), 1024)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.infolist()[0].file_size == 1024
    code = refusal(extract_archive, data, "liar.zip", max_uncompressed_bytes=MB)
    assert code == "zip_bomb"


def test_docx_with_a_huge_member_is_a_zip_bomb():
    buffer = io.BytesIO()
    target = zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(io.BytesIO(make_docx())) as source, target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("word/media/padding.bin", b"\x00" * (6 * MB))
    data = buffer.getvalue()
    assert len(data) < 100_000
    assert refusal(extract, data, "small.docx", max_uncompressed_bytes=5 * MB) == "zip_bomb"


def test_xlsx_over_the_uncompressed_limit_is_a_zip_bomb():
    assert refusal(extract, make_xlsx(), "rates.xlsx", max_uncompressed_bytes=2000) == "zip_bomb"


def test_encrypted_zip_member_is_refused():
    data = bytearray(make_zip({"a.txt": b"hello"}, compression=zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit in the central directory and the local header.
    struct.pack_into("<H", data, data.index(b"PK\x01\x02") + 8, 0x1)
    struct.pack_into("<H", data, data.index(b"PK\x03\x04") + 6, 0x1)
    assert refusal(extract_archive, bytes(data), "locked.zip") == "encrypted_archive"


def test_truncated_zip_is_corrupt_and_docx_named_zip_is_a_mismatch():
    data = make_zip({"a.txt": b"hello " * 1000})
    assert refusal(extract_archive, data[: len(data) // 2], "cut.zip") == "corrupt_file"
    assert refusal(extract_archive, make_docx(), "policy.zip") == "type_mismatch"
