"""Knowledge health: facts of searchable passages, conflicts between them, changes not carried
over, stale documents, review marks, notifications."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Fact(models.Model):
    """A value stated by a searchable passage (see health/facts.py). Rebuilt when a version goes
    live; only the live versions' passages have facts."""

    chunk = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("knowledge.DocumentVersion", on_delete=models.CASCADE, related_name="+")
    knowledge_base = models.ForeignKey("knowledge.KnowledgeBase", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    unit = models.CharField(max_length=16)
    value = models.CharField(max_length=64)
    subject = ArrayField(models.CharField(max_length=100), default=list)
    key = models.CharField(max_length=20)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    text = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["key"], name="health_fact_key"), models.Index(fields=["document"], name="health_fact_document")]


class FindingStatus(models.TextChoices):
    OPEN = "open", _("open")
    DISMISSED = "dismissed", _("not a conflict")
    RESOLVED = "resolved", _("resolved")


class Conflict(models.Model):
    """Two passages of different documents stating different values for one subject. Keyed by
    the two passages: a dismissed pair stays dismissed until one side changes (a new version
    means new passages, hence a new pair)."""

    chunk_a = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    chunk_b = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    document_a = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    document_b = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=20)
    kind = models.CharField(max_length=16)
    unit = models.CharField(max_length=16)
    subject = ArrayField(models.CharField(max_length=100), default=list)
    value_a = models.CharField(max_length=64)
    value_b = models.CharField(max_length=64)
    span_a = ArrayField(models.PositiveIntegerField(), size=2)
    span_b = ArrayField(models.PositiveIntegerField(), size=2)
    status = models.CharField(_("status"), max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    reason = models.TextField(_("reason"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["chunk_a", "chunk_b", "key"], name="health_conflict_pair_unique")]
        indexes = [models.Index(fields=["status"], name="health_conflict_status")]


class CarryOver(models.Model):
    """A passage that may still state the old value of a fact another document changed."""

    change_document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    change_version = models.ForeignKey("knowledge.DocumentVersion", on_delete=models.CASCADE, related_name="+")
    previous_version = models.ForeignKey("knowledge.DocumentVersion", on_delete=models.CASCADE, related_name="+")
    chunk = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=20)
    kind = models.CharField(max_length=16)
    unit = models.CharField(max_length=16)
    subject = ArrayField(models.CharField(max_length=100), default=list)
    old_value = models.CharField(max_length=64)
    new_value = models.CharField(max_length=64)
    span = ArrayField(models.PositiveIntegerField(), size=2)
    status = models.CharField(_("status"), max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    reason = models.TextField(_("reason"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["change_version", "chunk", "key"], name="health_carryover_unique")]
        indexes = [models.Index(fields=["status"], name="health_carryover_status")]
