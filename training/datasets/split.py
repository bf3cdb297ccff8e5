"""A seeded train/validation split that does not depend on row order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class SplitError(ValueError):
    pass


def _row_key(row) -> str:
    if isinstance(row, dict):
        from training.models.datasets import row_payload_sha256

        return row_payload_sha256(row)
    return row.content_sha256


def split_rows(rows: Sequence[T], *, validation_ratio: float = 0.1, seed: int = 42) -> tuple[list[T], list[T]]:
    """(train, validation): rows are ranked by sha256(seed, row hash) and the first
    ceil-ish `validation_ratio` share goes to validation (at least one row each side).
    Rows keep their original order within each side."""
    if not 0 < validation_ratio < 1:
        raise SplitError("validation_ratio must be between 0 and 1")
    if len(rows) < 2:
        raise SplitError(f"{len(rows)} row(s) is too few to split into train and validation")
    n_val = min(len(rows) - 1, max(1, round(len(rows) * validation_ratio)))
    ranked = sorted(
        range(len(rows)),
        key=lambda i: (hashlib.sha256(f"{seed}:{_row_key(rows[i])}".encode()).hexdigest(), i),
    )
    validation = set(ranked[:n_val])
    return [r for i, r in enumerate(rows) if i not in validation], [r for i, r in enumerate(rows) if i in validation]


def dataset_version_split(
    version, *, seed: int = 42, validation_fraction: float = 0.1
) -> tuple[list[list[dict]], list[list[dict]]]:
    """The seeded split of a DatasetVersion as OpenAI chat message lists (train, validation)."""
    train, validation = split_rows(
        list(version.rows.order_by("index")), validation_ratio=validation_fraction, seed=seed
    )
    return [r.messages for r in train], [r.messages for r in validation]
