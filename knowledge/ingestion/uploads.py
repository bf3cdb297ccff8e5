"""Uploads into a knowledge base: one or several files, or a .zip of files.

Each file becomes a document (or a new version of a document the user chose) through
knowledge.services, which stores the original file with its SHA-256, size and type and queues
ingestion. Unchanged content (same hash) creates no version. Problems found inside a file
(encrypted, corrupt, zip bomb, empty, binary, lying extension) end as a failed version with a
clear message; only a file over the size limit is refused before any version is made.

The user's text is the user's text: a Markdown or text file is decoded (the same detection as
ingestion: UTF-8, GBK/GB18030, Big5, …) and kept as the version's content exactly; cleaning is
only for the chunks. Other formats keep their file, and their text is what ingestion extracts.
A new document is titled by the file's first heading (or its PDF/DOCX metadata title), else by its
file name; a new version never renames the document. Files other than archives and text are
hashed and stored chunk by chunk (never read whole into memory); entries of an archive that are
skipped (paths leaving it, hidden files, macOS copies) are listed in the outcome with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import services
from ..models import Document, DocumentState, DocumentVersion, KnowledgeBase
from .archive import SKIP_HIDDEN, SKIP_RESOURCE_FORK, SKIP_UNSAFE_PATH
from .detect import declared_kind, decode_text, detect
from .errors import IngestionError
from .extract import extract_archive
from .title import title_from_file, title_from_text

# Kinds whose decoded text is the version's content (what a person reads and edits).
CONTENT_KINDS = ("markdown", "text")
SKIP_MESSAGES = {
    SKIP_UNSAFE_PATH: gettext_lazy("skipped: its path leaves the archive (“..” or an absolute path)"),
    SKIP_RESOURCE_FORK: gettext_lazy("skipped: a macOS resource copy (__MACOSX)"),
    SKIP_HIDDEN: gettext_lazy("skipped: a hidden file"),
}


@dataclass
class UploadOutcome:
    name: str
    # created: a new document; new_version: a version of an existing one; unchanged; refused;
    # skipped: an archive entry that was not stored (message says why)
    status: str
    document: Document | None = None
    version: DocumentVersion | None = None
    message: str = ""


def upload_files(
    *,
    actor: Any,
    knowledge_base: KnowledgeBase,
    files: list[Any],
    document: Document | None = None,
    change_note: str = "",
    ip: str | None = None,
) -> list[UploadOutcome]:
    """Store each upload (each in its own transaction, through the services); .zip files are
    unpacked and each member is stored. With `document`, the single file becomes its new version."""
    if document is not None:
        if document.knowledge_base_id != knowledge_base.pk:
            raise ValidationError(_("The document is not in this knowledge base."), code="wrong_knowledge_base")
        if len(files) != 1 or _is_zip(files[0].name):
            raise ValidationError(
                _("Upload exactly one file (not a .zip) to add a version to a document."), code="one_file"
            )
    outcomes: list[UploadOutcome] = []
    for upload in files:
        name = _base_name(upload.name)
        size = getattr(upload, "size", None)
        limit = settings.UPLOAD_MAX_BYTES
        if size is not None and size > limit:
            refusal = IngestionError("too_large", size=size, limit=limit)
            outcomes.append(UploadOutcome(name, "refused", message=str(refusal)))
            continue
        if _is_zip(name):
            outcomes.extend(_upload_archive(actor, knowledge_base, upload, _read(upload), change_note, ip))
        else:
            outcomes.append(_upload_one(actor, knowledge_base, upload, name, None, document, change_note, ip))
    return outcomes


def _read(upload: Any) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def _digest(upload: Any) -> str:
    """SHA-256 of an upload, read chunk by chunk."""
    digest = hashlib.sha256()
    upload.seek(0)
    if hasattr(upload, "chunks"):
        for chunk in upload.chunks():
            digest.update(chunk)
    else:
        while chunk := upload.read(64 * 1024):
            digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _content_of(upload: Any, name: str, data: bytes | None) -> str:
    """The decoded text of a Markdown or text upload, kept exactly; "" for other formats and for
    bytes that are not text (the version then fails in ingestion with the reason)."""
    if declared_kind(name) not in CONTENT_KINDS:
        return ""
    data = _read(upload) if data is None else data
    try:
        detect(data, name)
        text, _encoding = decode_text(data, name)
    except IngestionError:
        return ""
    return text if text.strip() else ""


def _base_name(name: str) -> str:
    return PurePosixPath((name or "upload").replace("\\", "/")).name or "upload"


def _is_zip(name: str) -> bool:
    return declared_kind(name or "") == "zip"


def _upload_archive(actor, knowledge_base, upload, data, change_note, ip) -> list[UploadOutcome]:
    name = _base_name(upload.name)
    limit = settings.UPLOAD_MAX_BYTES
    skipped: list[tuple[str, str]] = []
    try:
        members = extract_archive(data, name, max_bytes=limit, max_uncompressed_bytes=4 * limit, skipped=skipped)
    except IngestionError:
        # Stored as it is, the archive's version fails in the pipeline with the same clear message.
        return [_upload_one(actor, knowledge_base, upload, name, data, None, change_note, ip)]
    outcomes = [UploadOutcome(inner, "skipped", message=str(SKIP_MESSAGES[reason])) for inner, reason in skipped]
    for inner_name, content in members:
        member = ContentFile(content, name=_base_name(inner_name))
        outcomes.append(
            _upload_one(actor, knowledge_base, member, _base_name(inner_name), content, None, change_note, ip,
                        title=_title(inner_name))
        )
    if not members:
        outcomes.append(UploadOutcome(name, "refused", message=_("The archive contains no files.")))
    return outcomes


def _title(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def _upload_one(actor, knowledge_base, upload, name, data, document, change_note, ip, title=None) -> UploadOutcome:
    if not hasattr(upload, "chunks"):
        upload = ContentFile(_read(upload) if data is None else data, name=name)
    digest = _digest(upload)
    if document is None:
        same = (
            Document.objects.filter(knowledge_base=knowledge_base, latest_version__file_sha256=digest)
            .exclude(state=DocumentState.ARCHIVED)
            .first()
        )
        if same is not None:
            return UploadOutcome(name, "unchanged", document=same, version=same.latest_version,
                                 message=_("Unchanged: this content is already the latest version of “%(title)s”.")
                                 % {"title": same.title})
    content = _content_of(upload, name, data)
    try:
        if document is None:
            heading = title_from_text(content, name) if content else title_from_file(upload, name)
            created = services.document_create(
                actor=actor, knowledge_base=knowledge_base, title=(heading or title or _title(name))[:300],
                content=content,
                change_note=change_note or _("Uploaded %(name)s") % {"name": name}, original_file=upload, ip=ip,
            )
            return UploadOutcome(name, "created", document=created, version=created.latest_version)
        document.refresh_from_db()
        latest = document.latest_version
        if latest.file_sha256 == digest:
            return UploadOutcome(name, "unchanged", document=document, version=latest,
                                 message=_("Unchanged: this content is already the latest version."))
        version = services.document_version_create(
            actor=actor, document=document, content=content, base_version_number=latest.number,
            change_note=change_note or _("Uploaded %(name)s") % {"name": name}, original_file=upload, ip=ip,
        )
        return UploadOutcome(name, "new_version", document=document, version=version)
    except PermissionDenied:
        raise
    except (ValidationError, services.VersionConflict, services.EditLocked) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return UploadOutcome(name, "refused", message=message)
