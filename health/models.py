"""Knowledge health: facts of searchable passages, conflicts between them, changes not carried
over, stale documents, review marks, notifications."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
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


class Finding(models.Model):
    """What a conflict and a change not carried over share: the fact's key and subject, and the
    manager's decision on it."""

    key = models.CharField(max_length=20)
    kind = models.CharField(max_length=16)
    unit = models.CharField(max_length=16)
    subject = ArrayField(models.CharField(max_length=100), default=list)
    status = models.CharField(_("status"), max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    reason = models.TextField(_("reason"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class Conflict(Finding):
    """Two passages of different documents stating different values for one subject. Keyed by
    the two passages: a dismissed pair stays dismissed until one side changes (a new version
    means new passages, hence a new pair)."""

    chunk_a = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    chunk_b = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    document_a = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    document_b = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    value_a = models.CharField(max_length=64)
    value_b = models.CharField(max_length=64)
    span_a = ArrayField(models.PositiveIntegerField(), size=2)
    span_b = ArrayField(models.PositiveIntegerField(), size=2)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["chunk_a", "chunk_b", "key"], name="health_conflict_pair_unique")]
        indexes = [models.Index(fields=["status"], name="health_conflict_status")]


class CarryOver(Finding):
    """A passage that may still state the old value of a fact another document changed."""

    change_document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    change_version = models.ForeignKey("knowledge.DocumentVersion", on_delete=models.CASCADE, related_name="+")
    previous_version = models.ForeignKey("knowledge.DocumentVersion", on_delete=models.CASCADE, related_name="+")
    chunk = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    old_value = models.CharField(max_length=64)
    new_value = models.CharField(max_length=64)
    span = ArrayField(models.PositiveIntegerField(), size=2)

    class Meta:
        ordering = ["-created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["change_version", "chunk", "key"], name="health_carryover_unique")]
        indexes = [models.Index(fields=["status"], name="health_carryover_status")]


class KnowledgeBaseHealth(models.Model):
    """Per knowledge base: after how many days of failing syncs its source documents are stale."""

    knowledge_base = models.OneToOneField("knowledge.KnowledgeBase", on_delete=models.CASCADE, related_name="+")
    source_failure_days = models.PositiveIntegerField(_("days of failing syncs before documents are stale"), default=3)


class StaleReason(models.TextChoices):
    REVIEW_BY = "review_by", _("past its review-by date")
    SOURCE_FAILING = "source_failing", _("its source has failed to sync")
    OWNER_GONE = "owner_gone", _("its owner is no longer an active member")


class ReviewMark(models.Model):
    """A manager marked a stale document reviewed: it is not stale again until `valid_until`."""

    document = models.ForeignKey("knowledge.Document", on_delete=models.CASCADE, related_name="+")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(_("note"))
    reviewed_at = models.DateTimeField(default=timezone.now)
    valid_until = models.DateField()

    class Meta:
        ordering = ["-reviewed_at"]


class NotificationKind(models.TextChoices):
    STALE = "stale", _("Stale documents")
    CONFLICT = "conflict", _("Conflicting facts")
    CARRY_OVER = "carry_over", _("Changes not carried over")
    GAP = "gap", _("Unanswered questions")


class Notification(models.Model):
    """One per user, event and period (the unique constraint makes a second one impossible)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    event = models.CharField(max_length=100)
    period = models.CharField(max_length=20)
    message = models.CharField(max_length=500)  # as e-mailed; the page re-renders it in the reader's language
    subject = models.CharField(max_length=300, blank=True)  # what it is about (a document title)
    url = models.CharField(max_length=300, blank=True)
    emailed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "kind", "event", "period"], name="health_notification_once_per_period")]
        indexes = [models.Index(fields=["user"], condition=models.Q(read_at__isnull=True), name="health_notification_unread")]


class NotificationOptOut(models.Model):
    """The user turned this kind of notification off (in the app and by e-mail)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="health_notification_optout_unique")]


class GapReason(models.TextChoices):
    NO_KNOWLEDGE = "no_knowledge", _("no relevant knowledge")
    NEGATIVE_FEEDBACK = "negative_feedback", _("rated not helpful")


class GapGroup(models.Model):
    """Questions the knowledge did not answer, grouped by similarity (health/gaps.py). Its
    centroid is the mean of its members' vectors; a manager may turn it into a draft document."""

    centroid = ArrayField(models.FloatField(), default=list)
    size = models.PositiveIntegerField(default=0)
    model = models.CharField(max_length=300)  # the embedding model of the centroid
    draft_document = models.ForeignKey("knowledge.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    drafted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    drafted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]


class GapQuestion(models.Model):
    """A question that got the no-knowledge outcome or a thumbs down, embedded once. Scoped by the
    knowledge bases it was asked against (the assistant's, within what the asker could read)."""

    message = models.OneToOneField("chat.Message", on_delete=models.CASCADE, related_name="+")
    asker = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=20, choices=GapReason.choices)
    question = models.TextField()
    asked_at = models.DateTimeField()
    knowledge_bases = ArrayField(models.BigIntegerField(), default=list)
    vector = ArrayField(models.FloatField(), default=list)
    group = models.ForeignKey(GapGroup, null=True, on_delete=models.SET_NULL, related_name="questions")

    class Meta:
        ordering = ["asked_at", "pk"]
        indexes = [GinIndex(fields=["knowledge_bases"], name="health_gapq_kbs"),
                   models.Index(fields=["asked_at"], name="health_gapq_asked")]
