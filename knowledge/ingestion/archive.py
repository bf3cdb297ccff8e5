"""Zip reading with zip-bomb protection, for .zip uploads and for DOCX/XLSX (which are zips).

Sizes in the central directory are checked first, then every member is inflated in a stream
while the real output is counted, because a crafted archive can declare small sizes and still
expand without end.
"""

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import IngestionError

READ_CHUNK = 64 * 1024
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, NotImplementedError)


@dataclass(frozen=True)
class ZipLimits:
    max_uncompressed_bytes: int
    max_member_bytes: int | None = None  # defaults to max_uncompressed_bytes
    max_ratio: float = 200.0
    # Below this size a high ratio is harmless (a small file of repeated text compresses well).
    ratio_floor_bytes: int = 1024 * 1024
    max_members: int = 10_000


def check_zip(data: bytes, *, limits: ZipLimits, name: str = "", keep=None) -> dict[str, bytes]:
    """Verify a zip against the limits by inflating every member; return the members kept.

    ``keep(info)`` says which members' bytes to return (they are inflated either way, so that
    a bomb hidden in a member nobody reads is still found). Raises zip_bomb, corrupt_file or
    encrypted_archive.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, struct.error) as error:
        raise IngestionError("corrupt_file", name=name) from error
    per_member = limits.max_member_bytes or limits.max_uncompressed_bytes
    _check_headers(infos, limits=limits, per_member=per_member, name=name)
    kept: dict[str, bytes] = {}
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise IngestionError("encrypted_archive", name=name)
        wanted = keep is None or keep(info)
        parts = [] if wanted else None
        produced = 0
        try:
            for piece in _inflate(archive, data, info):
                produced += len(piece)
                total += len(piece)
                if produced > info.file_size:
                    raise _bomb(name, f"{info.filename} is larger than its header says")
                if produced > per_member:
                    raise _bomb(name, f"{info.filename} is over {per_member} bytes")
                if total > limits.max_uncompressed_bytes:
                    raise _bomb(name, f"more than {limits.max_uncompressed_bytes} bytes in total")
                if produced > limits.ratio_floor_bytes and produced > limits.max_ratio * max(info.compress_size, 1):
                    raise _bomb(name, f"{info.filename} has a compression ratio over {limits.max_ratio:g}")
                if parts is not None:
                    parts.append(piece)
        except IngestionError:
            raise
        except _READ_ERRORS as error:
            raise IngestionError("corrupt_file", name=name) from error
        if produced != info.file_size:
            raise IngestionError("corrupt_file", name=name)
        if parts is not None:
            kept[info.filename] = b"".join(parts)
    return kept


def _check_headers(infos, *, limits: ZipLimits, per_member: int, name: str) -> None:
    if len(infos) > limits.max_members:
        raise _bomb(name, f"more than {limits.max_members} members")
    declared_total = 0
    for info in infos:
        declared_total += info.file_size
        if info.file_size > per_member:
            raise _bomb(name, f"{info.filename} declares {info.file_size} bytes")
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _bomb(name, f"{info.filename} has a compression ratio over {limits.max_ratio:g}")
    if declared_total > limits.max_uncompressed_bytes:
        raise _bomb(name, f"{declared_total} bytes declared in total")


def _bomb(name: str, detail: str) -> IngestionError:
    return IngestionError("zip_bomb", name=name, detail=detail)


def _inflate(archive: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo):
    """Yield a member's real uncompressed bytes, not capped at the size its header declares."""
    if info.compress_type == zipfile.ZIP_STORED:
        start = _data_offset(data, info)
        raw = data[start : start + info.compress_size]
        for offset in range(0, len(raw), READ_CHUNK):
            yield raw[offset : offset + READ_CHUNK]
        return
    if info.compress_type == zipfile.ZIP_DEFLATED:
        start = _data_offset(data, info)
        # Read to the end of the buffer: a lying compress_size must not hide the rest of the stream.
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        position = start
        while not inflater.eof:
            if inflater.unconsumed_tail:
                piece = inflater.decompress(inflater.unconsumed_tail, READ_CHUNK)
            else:
                if position >= len(data):
                    raise zipfile.BadZipFile("deflate stream ends early")
                piece = inflater.decompress(data[position : position + READ_CHUNK], READ_CHUNK)
                position += READ_CHUNK
            if piece:
                yield piece
        return
    # Other methods (bzip2, lzma): zipfile's reader, which stops at the declared size.
    with archive.open(info) as stream:
        while piece := stream.read(READ_CHUNK):
            yield piece


def _data_offset(data: bytes, info: zipfile.ZipInfo) -> int:
    header = data[info.header_offset : info.header_offset + 30]
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, repairing GBK names that Windows tools store without the UTF-8 flag."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            return name
        for encoding in ("utf-8", "gbk", "big5"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
    return name


def is_safe_member(name: str) -> bool:
    return member_skip_reason(name) is None


# Why a member of an uploaded archive is not stored (the upload outcome lists each one).
SKIP_UNSAFE_PATH = "unsafe_path"  # absolute, a drive letter, or "..": it would leave the archive
SKIP_RESOURCE_FORK = "resource_fork"  # __MACOSX/ copies made by macOS
SKIP_HIDDEN = "hidden"  # a dot file or a file in a dot folder


def member_skip_reason(name: str) -> str | None:
    """None for a member to store, else the reason it is skipped."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if path.is_absolute() or ".." in path.parts or (len(normalized) > 1 and normalized[1] == ":"):
        return SKIP_UNSAFE_PATH
    if path.parts and path.parts[0] == "__MACOSX":
        return SKIP_RESOURCE_FORK
    if any(part.startswith(".") for part in path.parts):
        return SKIP_HIDDEN
    return None
