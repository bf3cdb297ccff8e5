"""Every write to datasets: create a dataset, add a version (upload, cleaning, augmentation,
knowledge base, feedback). Each version is written in one transaction with all its rows, and
audited; nothing is ever half-imported."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max

from accounts.models import Department
from core.audit import AuditAction, audit_log

from .models import Dataset, DatasetRow, DatasetVersion, row_payload, row_payload_sha256, rows_sha256
from .policy import dataset_policy

# Rows are inserted in batches of this size (one INSERT each).
ROW_BATCH = 1000


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def normalize_payloads(payloads: list[dict]) -> list[dict]:
    return [row_payload(**p) for p in payloads]


@transaction.atomic
def dataset_create(
    *, actor: Any, department: Department, name: str, description: str = "", ip: str | None = None
) -> Dataset:
    _require(dataset_policy.user_may_add_in(actor, department))
    dataset = Dataset(name=name.strip(), description=description, department=department, created_by=actor)
    dataset.full_clean(exclude=["latest_version"])
    dataset.save()
    audit_log(actor=actor, action=AuditAction.CREATE, obj=dataset, department=department, ip=ip)
    return dataset


@transaction.atomic
def dataset_version_create(
    *,
    actor: Any,
    dataset: Dataset,
    payloads: list[dict],
    origin: str,
    parent: DatasetVersion | None = None,
    report: dict | None = None,
    note: str = "",
    ip: str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Add a version holding exactly `payloads`; returns (version, created). Content equal to
    the latest version's makes no new version (returns the latest, False)."""
    _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    rows = normalize_payloads(payloads)
    content_sha256 = rows_sha256(rows)
    latest = dataset.latest_version
    if latest is not None and latest.content_sha256 == content_sha256:
        return latest, False
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, parent=parent if parent is not None else latest, origin=origin,
        content_sha256=content_sha256, row_count=len(rows), report=report or {}, note=note[:500], created_by=actor,
    )
    DatasetRow.objects.bulk_create(
        [DatasetRow(version=version, index=i, content_sha256=row_payload_sha256(p), **p) for i, p in enumerate(rows)],
        batch_size=ROW_BATCH,
    )
    dataset.latest_version = version
    dataset.save(update_fields=["latest_version", "updated_at"])
    audit_log(
        actor=actor, action=AuditAction.EDIT if number > 1 else AuditAction.CREATE, obj=version,
        department=dataset.department, ip=ip, dataset=dataset.pk, number=number, origin=origin,
        rows=len(rows), content_sha256=content_sha256,
    )
    return version, True


class DatasetUploadInvalid(Exception):
    """The file has errors: nothing was imported. `result.errors` lists them per row."""

    def __init__(self, result):
        super().__init__(f"{len(result.errors)} error(s)")
        self.result = result


def dataset_upload(
    *,
    actor: Any,
    file_name: str,
    data: bytes,
    fmt: str = "auto",
    dataset: Dataset | None = None,
    department: Department | None = None,
    name: str = "",
    description: str = "",
    ip: str | None = None,
) -> DatasetVersion:
    """Validate the whole file first; then, in one transaction, create the dataset (when none is
    given) and its new version. Raises DatasetUploadInvalid with every row error otherwise."""
    from .datasets.formats import parse_upload

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    result = parse_upload(file_name, data, fmt)
    if result.errors:
        raise DatasetUploadInvalid(result)
    with transaction.atomic():
        if dataset is None:
            dataset = dataset_create(actor=actor, department=department, name=name or file_name, description=description, ip=ip)
        version, _created = dataset_version_create(
            actor=actor, dataset=dataset, payloads=result.payloads, origin="upload",
            report={"file_name": file_name[:255], "format": result.format, "rows": len(result.payloads)},
            note=file_name[:500], ip=ip,
        )
    return version


class DatasetOperationError(Exception):
    """A cleaning/augmentation/generation request that cannot run: the message is shown as is."""


def version_payloads(version: DatasetVersion) -> list[dict]:
    return [row.payload() for row in version.rows.order_by("index")]


def dataset_clean(*, actor: Any, version: DatasetVersion, options, ip: str | None = None) -> tuple[DatasetVersion, bool]:
    """A new version: `version`'s rows after the chosen cleaning steps, with the report of each."""
    from django.utils.translation import gettext as _

    from .datasets.cleaning import clean
    from .datasets.tokenizer import TokenizerUnavailable, load_tokenizer

    dataset = version.dataset
    _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    tokenizer = None
    if options.min_answer_tokens or options.max_tokens:
        try:
            tokenizer = load_tokenizer()
        except TokenizerUnavailable as exc:
            raise DatasetOperationError(str(exc)) from exc
    cleaned, steps = clean(version_payloads(version), options, tokenizer)
    if not cleaned:
        raise DatasetOperationError(_("Cleaning would remove every row; nothing was saved."))
    return dataset_version_create(
        actor=actor, dataset=dataset, payloads=cleaned, origin="clean", parent=version,
        report={"source_version": version.number, "steps": steps,
                "tokenizer": str(getattr(tokenizer, "name_or_path", "")) if tokenizer else ""},
        note=_("cleaned from v%(number)s") % {"number": version.number}, ip=ip,
    )
