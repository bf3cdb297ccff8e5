"""The model registry: versions (base model + adapter or full weights, with their lineage), their
evaluations, and the activation log whose newest row is the version the chat serves."""

from __future__ import annotations

__all__ = ["ModelVersionKind", "ModelVersion", "Evaluation", "ModelActivation"]

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ModelVersionKind(models.TextChoices):
    BASE = "base", _("Base model")
    ADAPTER = "adapter", _("Adapter")
    FULL = "full", _("Full weights")


class ModelVersion(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=ModelVersionKind.choices)
    base_model_path = models.CharField(_("base model"), max_length=500)
    adapter_path = models.CharField(max_length=500, blank=True)  # kind=adapter
    weights_path = models.CharField(max_length=500, blank=True)  # kind=full (a complete model directory)
    method = models.CharField(max_length=16, blank=True)
    job = models.ForeignKey("training.FineTuningJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    chat_template = models.TextField(blank=True)
    chat_template_sha256 = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)  # the lineage, as in metadata.json
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["base_model_path"], condition=models.Q(kind="base"), name="model_version_one_base_row_per_path"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def model_dir(self) -> str:
        """The directory transformers loads the (base or full) weights from."""
        return self.weights_path or self.base_model_path


class Evaluation(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset_version = models.ForeignKey("training.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=16, default="validation")  # validation | train | all
    seed = models.PositiveIntegerField(default=42)
    validation_fraction = models.FloatField(default=0.1)
    options = models.JSONField(default=dict, blank=True)  # {"rag": bool, "robustness": bool, "limit": n}
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    metrics = models.JSONField(default=dict, blank=True)
    items = models.JSONField(default=list, blank=True)
    # Knowledge bases the RAG samples (metrics["rag_samples"]) quote: only users who may read all of
    # them see the samples (job_selectors.evaluation_rag_samples).
    rag_knowledge_bases = models.ManyToManyField("knowledge.KnowledgeBase", blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def status(self) -> str:
        return self.job.status if self.job else "queued"


class ModelActivation(models.Model):
    """Append-only: the newest row names the active version (null: none, the chat falls back)."""

    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    gate = models.JSONField(default=dict, blank=True)  # the comparison that allowed (or was overridden)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
