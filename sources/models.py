"""External sources that feed a knowledge base: SQL queries and JSON HTTP APIs.

Each source row (or JSON record) becomes one document; `SourceRecord` remembers which document
a row became and the hash of what was last synced, so an unchanged row creates nothing.
Credentials are stored encrypted (sources.crypto) and only a redacted hint is ever shown.
Syncs run as the source's creator (`created_by`), who must still manage the knowledge base.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import crypto


class SourceKind(models.TextChoices):
    SQL = "sql", _("SQL database")
    HTTP = "http", _("HTTP API")


class SyncStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIAL = "partial", _("Some records failed")
    FAILED = "failed", _("Failed")


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", _("Manual")
    SCHEDULE = "schedule", _("Schedule")


class Source(models.Model):
    knowledge_base = models.ForeignKey(
        "knowledge.KnowledgeBase", verbose_name=_("knowledge base"), on_delete=models.PROTECT, related_name="sources"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=SourceKind.choices)
    name = models.CharField(_("name"), max_length=200)
    enabled = models.BooleanField(_("enabled"), default=True)
    schedule_minutes = models.PositiveIntegerField(
        _("sync every (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(60 * 24 * 31)],
        help_text=_("Leave empty to sync only on demand."),
    )
    # Rendering: each row or record becomes one document.
    key_field = models.CharField(
        _("key column"), max_length=200, help_text=_("The column (or JSON field) that identifies a record.")
    )
    title_template = models.CharField(
        _("title template"), max_length=500, help_text=_("For example: {name} or {{ name }} ({{ code }})")
    )
    body_template = models.TextField(
        _("body template"),
        help_text=_("Markdown with {column} placeholders, or Django template syntax: {{ column }}, {% if %}."),
    )
    # SQL
    dsn_encrypted = models.TextField(blank=True, editable=False)
    dsn_hint = models.CharField(_("connection"), max_length=300, blank=True, editable=False)
    query = models.TextField(_("query"), blank=True, help_text=_("A read-only SELECT; it runs in a read-only transaction."))
    # HTTP
    url = models.URLField(_("URL"), max_length=2000, blank=True)
    records_path = models.CharField(
        _("path to the records"),
        max_length=300,
        blank=True,
        help_text=_("Dot-separated path to the list of records in the JSON answer, e.g. data.items; empty for a top-level list."),
    )
    auth_header_name = models.CharField(_("auth header name"), max_length=100, blank=True, default="Authorization")
    auth_header_encrypted = models.TextField(blank=True, editable=False)
    # Limits
    timeout_seconds = models.PositiveIntegerField(
        _("time limit (seconds)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    max_records = models.PositiveIntegerField(
        _("record limit"), default=1000, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    next_sync_at = models.DateTimeField(_("next sync"), null=True, blank=True)
    last_sync = models.ForeignKey(
        "SourceSync", verbose_name=_("last sync"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("source")
        verbose_name_plural = _("sources")
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "name"], name="source_name_unique_per_kb"),
            models.CheckConstraint(condition=models.Q(kind__in=SourceKind.values), name="source_kind_valid"),
        ]
        indexes = [models.Index(fields=["enabled", "next_sync_at"], name="source_due_idx")]

    def __str__(self) -> str:
        return self.name

    # Credentials: write-only; reading them decrypts (only the sync does that).
    @property
    def dsn(self) -> str:
        return crypto.decrypt(self.dsn_encrypted)

    @dsn.setter
    def dsn(self, value: str) -> None:
        self.dsn_encrypted = crypto.encrypt(value.strip())
        self.dsn_hint = crypto.dsn_hint(value) if value else ""

    @property
    def auth_header_value(self) -> str:
        return crypto.decrypt(self.auth_header_encrypted)

    @auth_header_value.setter
    def auth_header_value(self, value: str) -> None:
        self.auth_header_encrypted = crypto.encrypt(value.strip())

    @property
    def has_auth_header(self) -> bool:
        return bool(self.auth_header_encrypted)

    @property
    def is_scheduled(self) -> bool:
        return self.enabled and self.schedule_minutes is not None


class SourceRecord(models.Model):
    """Which document one external record became, and the hash of what was last synced."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="records")
    external_key = models.CharField(_("external key"), max_length=500)
    document = models.ForeignKey("knowledge.Document", on_delete=models.PROTECT, related_name="+")
    content_sha256 = models.CharField(max_length=64)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("source record")
        verbose_name_plural = _("source records")
        constraints = [
            models.UniqueConstraint(fields=["source", "external_key"], name="sourcerecord_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.source} · {self.external_key}"


class SourceSync(models.Model):
    """One sync run. Its row is the truth the UI and API show (not Celery's result), driven by
    core's background-work mechanism (kind "source_sync", sources/apps.py)."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="syncs")
    status = models.CharField(_("status"), max_length=16, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    trigger = models.CharField(_("trigger"), max_length=16, choices=SyncTrigger.choices, default=SyncTrigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    fetched = models.PositiveIntegerField(_("fetched"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    error = models.TextField(_("error"), blank=True)
    # Per-record failures: [{"key": "42", "error": "..."}], the first ones only.
    record_errors = models.JSONField(_("record errors"), default=list, blank=True)
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Background-work bookkeeping (core.jobs, kind "source_sync").
    progress = models.FloatField(_("progress"), default=0.0)
    heartbeat_at = models.DateTimeField(_("heartbeat at"), null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = _("source sync")
        verbose_name_plural = _("source syncs")
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=SyncStatus.values), name="sourcesync_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.queued_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in {SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.FAILED}

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class AllowedHost(models.Model):
    """A host (and optionally one port) that sources of one kind may reach: HTTP sources call it,
    SQL sources connect to it. Hosts that resolve to private, loopback or link-local addresses also
    need `allow_private_addresses`, so DNS cannot point a public name inside. Whatever the list
    says, a SQL source never reaches the product's own database (sources.dsn_guard)."""

    source_kind = models.CharField(
        _("for sources of kind"), max_length=8, choices=SourceKind.choices, default=SourceKind.HTTP
    )
    host = models.CharField(_("host"), max_length=253, help_text=_("A host name or IP address, without port."))
    port = models.PositiveIntegerField(
        _("port"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=_("Leave empty to allow every port of this host."),
    )
    allow_private_addresses = models.BooleanField(
        _("allow private addresses"),
        default=False,
        help_text=_("Allow this host even when it resolves to a private, loopback or link-local address."),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["source_kind", "host", "port"]
        verbose_name = _("allowed host")
        verbose_name_plural = _("allowed hosts")
        constraints = [
            models.UniqueConstraint(
                fields=["source_kind", "host", "port"], name="allowedhost_unique", nulls_distinct=False,
                violation_error_message=_("This host and port are already on the allowlist."),
            ),
            models.CheckConstraint(condition=models.Q(source_kind__in=SourceKind.values), name="allowedhost_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    def save(self, *args, **kwargs) -> None:
        self.host = normalize_host(self.host)
        super().save(*args, **kwargs)


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def allowlist_entry(kind: str, host: str, port: int) -> AllowedHost | None:
    """The entry that lets sources of `kind` reach host:port: one naming that port, else one for every port."""
    entries = AllowedHost.objects.filter(source_kind=kind, host=normalize_host(host)).filter(
        models.Q(port=port) | models.Q(port__isnull=True)
    )
    return entries.order_by(models.F("port").asc(nulls_last=True)).first()
