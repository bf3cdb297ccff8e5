"""Datasets for fine-tuning: a dataset has immutable versions; a version holds its rows.

A row is one training example in OpenAI chat form (`messages`, ending with the assistant turn
that carries the loss); a preference row also has the `rejected` assistant reply. Versions and
rows are append-only: the database refuses UPDATE and DELETE (trigger in migration 0002), and any
change (upload, cleaning, augmentation) makes a new version with its own content hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Dataset", "DatasetRow", "DatasetVersion", "VersionOrigin", "row_payload_sha256", "rows_sha256"]


class AppendOnlyError(Exception):
    pass


class Dataset(models.Model):
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # The department whose admins may see and edit it (ML engineers with the global permission see all).
    department = models.ForeignKey(
        "accounts.Department", verbose_name=_("department"), on_delete=models.PROTECT, related_name="datasets"
    )
    latest_version = models.ForeignKey(
        "DatasetVersion", verbose_name=_("latest version"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # Knowledge bases whose text is in some version's rows (from the knowledge base or chat
    # feedback): only users who may read all of them see the dataset (training.policy).
    source_knowledge_bases = models.ManyToManyField(
        "knowledge.KnowledgeBase", verbose_name=_("source knowledge bases"), blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        # Held globally by ML engineers: datasets, jobs and model versions of every department.
        permissions = [("use_training", "Can use datasets, fine-tuning jobs and model versions")]

    def __str__(self) -> str:
        return self.name


class VersionOrigin(models.TextChoices):
    UPLOAD = "upload", _("Upload")
    CLEAN = "clean", _("Cleaning")
    AUGMENT = "augment", _("Augmentation")
    KNOWLEDGE = "knowledge", _("Knowledge base")
    INCREMENTAL = "incremental", _("Changed documents")
    FEEDBACK = "feedback", _("Chat feedback")
    DISTILLATION = "distillation", _("Teacher model (distillation)")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def row_payload_sha256(payload: dict) -> str:
    return hashlib.sha256(_canonical(payload)).hexdigest()


def rows_sha256(payloads: list[dict]) -> str:
    """The content hash of a version: its rows in order."""
    digest = hashlib.sha256()
    for payload in payloads:
        digest.update(row_payload_sha256(payload).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class DatasetVersion(models.Model):
    """An immutable snapshot of a dataset's rows."""

    dataset = models.ForeignKey(Dataset, verbose_name=_("dataset"), on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("number"))
    parent = models.ForeignKey(
        "self", verbose_name=_("parent version"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    origin = models.CharField(_("origin"), max_length=20, choices=VersionOrigin.choices)
    content_sha256 = models.CharField(_("content SHA-256"), max_length=64)
    row_count = models.PositiveIntegerField(_("rows"))
    # What made it: the upload's file name and format, the cleaning/augmentation steps and what
    # each removed or changed, the knowledge versions used...
    report = models.JSONField(_("report"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "-number"]
        verbose_name = _("dataset version")
        verbose_name_plural = _("dataset versions")
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="datasetversion_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="datasetversion_number_positive"),
            models.CheckConstraint(condition=models.Q(origin__in=VersionOrigin.values), name="datasetversion_origin_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Dataset versions are immutable.")
        super().save(*args, **kwargs)

    @property
    def short_hash(self) -> str:
        return self.content_sha256[:12]

    def examples(self) -> list[list[dict]]:
        """The version's examples as OpenAI chat message lists, in row order."""
        return [row.messages for row in self.rows.order_by("index")]

    def preference_pairs(self) -> list[dict]:
        return [row.as_dpo() for row in self.rows.order_by("index") if row.rejected]


class DatasetRow(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="rows")
    index = models.PositiveIntegerField()
    messages = models.JSONField()
    rejected = models.TextField(blank=True)
    augmented = models.BooleanField(default=False)
    # How the row came to be: "upload", "synonym", "paraphrase", "kb_rule", "kb_model", "feedback"...
    method = models.CharField(max_length=40, blank=True)
    source_version_ids = models.JSONField(default=list, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    content_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["version_id", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="datasetrow_index_unique")]

    def __str__(self) -> str:
        return f"{self.version_id}#{self.index}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Dataset rows are immutable.")
        super().save(*args, **kwargs)

    def payload(self) -> dict:
        return row_payload(
            messages=self.messages, rejected=self.rejected, augmented=self.augmented, method=self.method,
            source_version_ids=self.source_version_ids, meta=self.meta,
        )

    def as_dpo(self) -> dict:
        return {"prompt": self.messages[:-1], "chosen": [self.messages[-1]],
                "rejected": [{"role": "assistant", "content": self.rejected}]}

    @property
    def prompt(self) -> str:
        users = [m["content"] for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"] if self.messages else ""


def row_payload(*, messages, rejected="", augmented=False, method="", source_version_ids=(), meta=None) -> dict:
    """The canonical dict of one row: what is hashed, stored and passed between cleaning steps."""
    return {
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "rejected": rejected or "",
        "augmented": bool(augmented),
        "method": method or "",
        "source_version_ids": sorted({int(i) for i in source_version_ids}),
        "meta": dict(meta or {}),
    }


__all__ += ["AppendOnlyError", "row_payload"]
