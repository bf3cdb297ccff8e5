"""Uploads into a knowledge base: one or several files, or a .zip of files.

Each file becomes a document (or a new version of a document the user chose) through
knowledge.services, which stores the original file with its SHA-256, size and type and queues
ingestion. Unchanged content (same hash) creates no version. Problems found inside a file
(encrypted, corrupt, zip bomb, empty, binary, lying extension) end as a failed version with a
clear message; only a file over the size limit is refused before any version is made.
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

from .. import services
from ..models import Document, DocumentState, DocumentVersion, KnowledgeBase
from .detect import declared_kind
from .errors import IngestionError
from .extract import extract_archive


@dataclass
class UploadOutcome:
    name: str
    # created: a new document; new_version: a version of an existing one; unchanged; refused
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
        data = _read(upload)
        if _is_zip(name):
            outcomes.extend(_upload_archive(actor, knowledge_base, upload, data, change_note, ip))
        else:
            outcomes.append(_upload_one(actor, knowledge_base, upload, name, data, document, change_note, ip))
    return outcomes


def _read(upload: Any) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def _base_name(name: str) -> str:
    return PurePosixPath((name or "upload").replace("\\", "/")).name or "upload"


def _is_zip(name: str) -> bool:
    return declared_kind(name or "") == "zip"


def _upload_archive(actor, knowledge_base, upload, data, change_note, ip) -> list[UploadOutcome]:
    name = _base_name(upload.name)
    limit = settings.UPLOAD_MAX_BYTES
    try:
        members = extract_archive(data, name, max_bytes=limit, max_uncompressed_bytes=4 * limit)
    except IngestionError:
        # Stored as it is, the archive's version fails in the pipeline with the same clear message.
        return [_upload_one(actor, knowledge_base, upload, name, data, None, change_note, ip)]
    outcomes = []
    for inner_name, content in members:
        member = ContentFile(content, name=_base_name(inner_name))
        outcomes.append(
            _upload_one(actor, knowledge_base, member, _base_name(inner_name), content, None, change_note, ip,
                        title=_title(inner_name))
        )
    if not outcomes:
        outcomes.append(UploadOutcome(name, "refused", message=_("The archive contains no files.")))
    return outcomes


def _title(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def _upload_one(actor, knowledge_base, upload, name, data, document, change_note, ip, title=None) -> UploadOutcome:
    digest = hashlib.sha256(data).hexdigest()
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
    if not isinstance(upload, ContentFile) and not hasattr(upload, "chunks"):
        upload = ContentFile(data, name=name)
    try:
        if document is None:
            created = services.document_create(
                actor=actor, knowledge_base=knowledge_base, title=(title or _title(name))[:300], content="",
                change_note=change_note or _("Uploaded %(name)s") % {"name": name}, original_file=upload, ip=ip,
            )
            return UploadOutcome(name, "created", document=created, version=created.latest_version)
        document.refresh_from_db()
        latest = document.latest_version
        if latest.file_sha256 == digest:
            return UploadOutcome(name, "unchanged", document=document, version=latest,
                                 message=_("Unchanged: this content is already the latest version."))
        version = services.document_version_create(
            actor=actor, document=document, content="", base_version_number=latest.number,
            change_note=change_note or _("Uploaded %(name)s") % {"name": name}, original_file=upload, ip=ip,
        )
        return UploadOutcome(name, "new_version", document=document, version=version)
    except PermissionDenied:
        raise
    except (ValidationError, services.VersionConflict, services.EditLocked) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return UploadOutcome(name, "refused", message=message)
