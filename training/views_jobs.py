"""Pages for fine-tuning jobs, the model registry and evaluations."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from . import job_selectors as selectors
from . import job_services as services
from .evaluation import comparison
from .finetune.hyperparameters import defaults
from .models import DatasetVersion, FineTuningMethod, ModelVersionKind
from .policy import dataset_version_policy
from .policy_jobs import fine_tuning_job_policy, model_version_policy


def _require_training(user) -> None:
    if not fine_tuning_job_policy.user_has_permission(user, "view"):
        raise PermissionDenied


class JobForm(forms.Form):
    dataset_version = forms.ModelChoiceField(label=_("Training file (dataset version)"), queryset=DatasetVersion.objects.none())
    method = forms.ChoiceField(label=_("Method"), choices=FineTuningMethod.choices, initial="lora")
    parent_version = forms.ModelChoiceField(
        label=_("Continue from (incremental or staged training)"), queryset=None, required=False
    )
    base_model_path = forms.CharField(label=_("Base model directory"), required=False, max_length=500,
                                      help_text=_("Empty: the configured base model."))
    suffix = forms.CharField(label=_("Suffix"), required=False, max_length=64)
    n_epochs = forms.IntegerField(label=_("Epochs"), required=False, min_value=1)
    learning_rate = forms.FloatField(label=_("Learning rate"), required=False, help_text=_("Empty: 1e-5 for full, 2e-4 for LoRA/DoRA, 3e-3 for IA3."))
    batch_size = forms.IntegerField(label=_("Batch size"), required=False, min_value=1)
    gradient_accumulation_steps = forms.IntegerField(label=_("Gradient accumulation steps"), required=False, min_value=1)
    warmup_ratio = forms.FloatField(label=_("Warmup ratio"), required=False)
    max_length = forms.IntegerField(label=_("Maximum length (tokens)"), required=False)
    lora_r = forms.IntegerField(label=_("LoRA r"), required=False)
    lora_alpha = forms.IntegerField(label=_("LoRA alpha"), required=False)
    lora_dropout = forms.FloatField(label=_("LoRA dropout"), required=False)
    early_stopping_patience = forms.IntegerField(label=_("Early-stopping patience (evaluations, 0 = off)"), required=False)
    seed = forms.IntegerField(label=_("Seed"), required=False)
    dpo_beta = forms.FloatField(label=_("DPO beta (DPO only; empty: 0.1)"), required=False)
    validation_fraction = forms.FloatField(label=_("Validation fraction"), initial=0.1)

    HYPERPARAMETERS = ("n_epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "warmup_ratio", "max_length",
                       "lora_r", "lora_alpha", "lora_dropout", "early_stopping_patience", "seed", "dpo_beta")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].queryset = dataset_version_policy.instances_user_has_permission_for(user, "view").select_related("dataset").order_by("-created_at")
        self.fields["parent_version"].queryset = model_version_policy.instances_user_has_permission_for(user, "view").exclude(kind=ModelVersionKind.BASE)


def job_list(request):
    _require_training(request.user)
    form = JobForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        hyperparameters = {k: data[k] for k in JobForm.HYPERPARAMETERS if data.get(k) is not None}
        try:
            job = services.fine_tuning_job_create(
                actor=request.user, dataset_version=data["dataset_version"], method=data["method"],
                base_model_path=data["base_model_path"], hyperparameters=hyperparameters, suffix=data["suffix"],
                validation_fraction=data["validation_fraction"], parent_version=data["parent_version"],
            )
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("training:job_detail", pk=job.pk)
    jobs = selectors.fine_tuning_job_list(user=request.user)[:100]
    return render(request, "training/jobs/list.html", {"form": form, "jobs": jobs, "defaults": defaults("lora")})


def job_detail(request, pk):
    job = selectors.fine_tuning_job_get(user=request.user, pk=pk)
    metrics = [e for e in job.events.filter(type="metrics").order_by("id")]
    series = {
        "steps": [e.step for e in metrics if "loss" in e.data],
        "loss": [e.data["loss"] for e in metrics if "loss" in e.data],
        "eval_steps": [e.step for e in metrics if "eval_loss" in e.data],
        "eval_loss": [e.data["eval_loss"] for e in metrics if "eval_loss" in e.data],
    }
    last = next((e.data for e in reversed(metrics) if "loss" in e.data), {})
    context = {
        "job": job,
        "events": job.events.order_by("-id")[:200],
        "checkpoints": job.checkpoints.all(),
        "series": series,
        "last": last,
        "events_url": reverse("fine-tuning-job-events", kwargs={"pk": job.pk}),
        "may_change": fine_tuning_job_policy.user_has_permission_for_instance(request.user, "change", job),
        "parent_visible": selectors.model_version_visible(user=request.user, pk=job.parent_version_id),
        "evaluations": selectors.evaluation_list(user=request.user).filter(model_version=job.fine_tuned_model)
        if job.fine_tuned_model else [],
    }
    return render(request, "training/jobs/detail.html", context)


@require_POST
def job_cancel(request, pk):
    job = selectors.fine_tuning_job_get(user=request.user, pk=pk, action="change")
    try:
        services.fine_tuning_job_cancel(actor=request.user, job=job)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("training:job_detail", pk=job.pk)


@require_POST
def job_resume(request, pk):
    job = selectors.fine_tuning_job_get(user=request.user, pk=pk, action="change")
    try:
        services.fine_tuning_job_resume(actor=request.user, job=job)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("training:job_detail", pk=job.pk)


class EvaluateForm(forms.Form):
    dataset_version = forms.ModelChoiceField(label=_("Dataset version"), queryset=DatasetVersion.objects.none())
    split = forms.ChoiceField(label=_("Split"), choices=[("validation", _("Validation")), ("train", _("Train")), ("all", _("All rows"))])
    rag = forms.BooleanField(label=_("Also in the RAG setting"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].queryset = dataset_version_policy.instances_user_has_permission_for(user, "view").select_related("dataset")


def model_list(request):
    _require_training(request.user)
    activation = services.active_activation()
    versions = selectors.model_version_list(user=request.user)
    context = {
        "versions": versions,
        "active_id": activation.version_id if activation else None,
        "activation": activation,
        "history": selectors.activation_history(user=request.user),
        "may_activate": model_version_policy.user_has_permission(request.user, "activate"),
        "may_override": model_version_policy.user_has_permission(request.user, "override_gate"),
        "evaluate_form": EvaluateForm(user=request.user),
    }
    return render(request, "training/models/list.html", context)


@require_POST
def model_activate(request, pk):
    version = selectors.model_version_get(user=request.user, pk=pk)
    try:
        services.model_version_activate(actor=request.user, version=version, reason=request.POST.get("reason", ""))
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("You may not activate model versions."))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Activated %(name)s.") % {"name": version.name})
    return redirect("training:model_list")


@require_POST
def model_restore(request):
    try:
        services.model_version_restore_previous(actor=request.user)
    except PermissionDenied:
        messages.error(request, _("You may not restore the previous version."))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("The previous version is active again."))
    return redirect("training:model_list")


@require_POST
def model_deactivate(request):
    services.model_version_activate(actor=request.user, version=None, action="model_version_deactivate")
    messages.success(request, _("No fine-tuned version is active: the chat uses its default model."))
    return redirect("training:model_list")


@require_POST
def model_evaluate(request, pk):
    version = selectors.model_version_get(user=request.user, pk=pk, action="evaluate")
    form = EvaluateForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, _("Choose a dataset version."))
        return redirect("training:model_list")
    evaluation = services.evaluation_create(
        actor=request.user, model_version=version, dataset_version=form.cleaned_data["dataset_version"],
        split=form.cleaned_data["split"], options={"rag": form.cleaned_data["rag"]},
    )
    return redirect("training:evaluation_detail", pk=evaluation.pk)


CHART_METRICS = (
    "exact_match", "contains", "token_f1", "robustness_mean", "rag_answer_accuracy", "rag_citation_accuracy", "rag_abstention",
)


def evaluation_detail(request, pk):
    evaluation = selectors.evaluation_get(user=request.user, pk=pk)
    rows = comparison(evaluation, user=request.user)
    chart = {
        "labels": [str(m) for m in CHART_METRICS],
        "series": {f"{r['role']}: {r['version'].name}": [r["metrics"].get(m) for m in CHART_METRICS] for r in rows},
    }
    return render(request, "training/evaluations/detail.html", {
        "evaluation": evaluation, "rows": rows, "metric_names": CHART_METRICS, "chart": chart,
        "robustness_kinds": sorted((evaluation.metrics.get("robustness") or {}).keys()),
        "rag_samples": selectors.evaluation_rag_samples(evaluation),
    })
