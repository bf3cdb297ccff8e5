"""Fine-tuning jobs in the OpenAI shape: a job, its events and its checkpoints. The job's truth is
in core.Job rows (status, heartbeat, error): the validation job, then the training run(s); the
status shown here is derived from them, so the project's one reaper also ends a dead training."""

from __future__ import annotations

__all__ = ["FineTuningStatus", "FineTuningMethod", "FineTuningJob", "FineTuningEvent", "FineTuningCheckpoint", "TERMINAL"]

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FineTuningStatus(models.TextChoices):
    VALIDATING_FILES = "validating_files", _("Validating files")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class FineTuningMethod(models.TextChoices):
    FULL = "full", _("Full fine-tuning")
    LORA = "lora", _("LoRA")
    DORA = "dora", _("DoRA")
    IA3 = "ia3", _("IA3")
    DPO = "dpo", _("DPO (preference pairs, LoRA)")


TERMINAL = {FineTuningStatus.SUCCEEDED, FineTuningStatus.FAILED, FineTuningStatus.CANCELLED}


class FineTuningJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("accounts.Department", verbose_name=_("department"), on_delete=models.PROTECT, related_name="+")
    dataset_version = models.ForeignKey(
        "training.DatasetVersion", verbose_name=_("training file"), on_delete=models.PROTECT, related_name="fine_tuning_jobs"
    )
    validation_fraction = models.FloatField(default=0.1)
    base_model_path = models.CharField(_("base model"), max_length=500)
    method = models.CharField(_("method"), max_length=16, choices=FineTuningMethod.choices)
    hyperparameters = models.JSONField(default=dict, blank=True)
    suffix = models.CharField(_("suffix"), max_length=64, blank=True)
    # Incremental training continues this version's adapter; staged training starts from its weights.
    parent_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="child_jobs"
    )
    teacher = models.JSONField(default=dict, blank=True)  # distillation: {"base_url", "model"}
    validation_job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)  # the clear message of a failure, without traceback
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    trained_tokens = models.BigIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    fine_tuned_model = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"ftjob-{self.id.hex[:12]} ({self.method})"

    @property
    def openai_id(self) -> str:
        return f"ftjob-{self.id.hex}"

    @property
    def status(self) -> str:
        from core.models import JobStatus

        if self.cancelled_at:
            return FineTuningStatus.CANCELLED
        if self.run_job_id is None:
            if self.error or (self.validation_job and self.validation_job.status == JobStatus.FAILED):
                return FineTuningStatus.FAILED
            return FineTuningStatus.VALIDATING_FILES
        run = self.run_job
        return {
            JobStatus.QUEUED: FineTuningStatus.QUEUED,
            JobStatus.RUNNING: FineTuningStatus.RUNNING,
            JobStatus.SUCCEEDED: FineTuningStatus.SUCCEEDED,
            JobStatus.FAILED: FineTuningStatus.FAILED,
        }[run.status]

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def error_message(self) -> str:
        if self.error:
            return self.error
        for job in (self.run_job, self.validation_job):
            if job is not None and job.error:
                return job.error.split("\n\n", 1)[0]
        return ""

    @property
    def progress(self) -> float:
        return self.run_job.progress if self.run_job else 0.0


class FineTuningEvent(models.Model):
    class Level(models.TextChoices):
        INFO = "info"
        WARN = "warn"
        ERROR = "error"

    job = models.ForeignKey(FineTuningJob, on_delete=models.CASCADE, related_name="events")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    type = models.CharField(max_length=16, default="message")  # "message" | "metrics"
    message = models.CharField(max_length=500)
    step = models.PositiveIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"])]


class FineTuningCheckpoint(models.Model):
    job = models.ForeignKey(FineTuningJob, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-step"]
        constraints = [models.UniqueConstraint(fields=["job", "step"], name="ft_checkpoint_job_step")]

    @property
    def openai_id(self) -> str:
        return f"ftckpt-{self.job_id.hex[:12]}-{self.step}"
