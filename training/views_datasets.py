"""Dataset pages: list and upload, a dataset's versions, a version's report, cleaning,
augmentation, preview (chat template, loss mask, token lengths, split) and export."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.audit import AuditAction, audit_log, client_ip

from . import selectors_datasets as selectors
from . import services_datasets as services
from .datasets.cleaning import CleaningOptions
from .datasets.split import SplitError, split_rows
from .datasets.tokenizer import TokenizerUnavailable, load_tokenizer
from .forms_datasets import (
    AugmentForm,
    CleaningForm,
    DatasetUploadForm,
    DistillationForm,
    FeedbackDatasetForm,
    KnowledgeDatasetForm,
    PreviewForm,
    VersionUploadForm,
    read_upload,
)
from .policy import dataset_policy, dataset_version_policy

PAGE_ROWS = 20
HISTOGRAM_MAX_ROWS = 20000

STEP_LABELS = {
    "empty": gettext_lazy("Empty rows"),
    "exact_duplicates": gettext_lazy("Exact duplicates"),
    "near_duplicates": gettext_lazy("Near duplicates"),
    "length": gettext_lazy("Token length"),
    "pii": gettext_lazy("Personal data masked"),
}
REASON_LABELS = {
    "empty": gettext_lazy("empty"),
    "too_short": gettext_lazy("answer too short"),
    "too_long": gettext_lazy("too long"),
}
PII_LABELS = {
    "mobile": gettext_lazy("mobile number"),
    "id_number": gettext_lazy("resident ID number"),
    "email": gettext_lazy("e-mail address"),
    "bank_card": gettext_lazy("bank card number"),
}


def _require_training(request) -> None:
    if not dataset_policy.user_has_permission(request.user, "view"):
        raise PermissionDenied


def _list_context(request, form=None, upload_errors=None, feedback_form=None):
    departments = selectors.dataset_departments(user=request.user)
    return {
        "datasets": selectors.dataset_list(user=request.user),
        "form": form or DatasetUploadForm(departments=departments),
        "feedback_form": feedback_form or FeedbackDatasetForm(departments=departments, prefix="feedback"),
        "upload_errors": upload_errors,
    }


@require_POST
def feedback_create(request):
    """A dataset version from the chat feedback the user may build from (corrections and thumbs-down)."""
    _require_training(request)
    form = FeedbackDatasetForm(request.POST, departments=selectors.dataset_departments(user=request.user), prefix="feedback")
    if form.is_valid():
        try:
            version = services.dataset_from_chat_feedback(
                actor=request.user, department=form.cleaned_data["department"], name=form.cleaned_data["name"],
                include_thumbs_up=form.cleaned_data["include_thumbs_up"], ip=client_ip(request),
            )
        except services.DatasetOperationError as exc:
            form.add_error(None, str(exc))
        else:
            withheld = (version.report or {}).get("withheld") or 0
            messages.success(request, _("%(rows)s examples from chat feedback; %(withheld)s withheld (knowledge you may not read).")
                             % {"rows": version.row_count, "withheld": withheld})
            return redirect("training:datasets:version", pk=version.dataset_id, number=version.number)
    return render(request, "training/datasets/list.html", _list_context(request, feedback_form=form), status=400)


def dataset_list(request):
    _require_training(request)
    return render(request, "training/datasets/list.html", _list_context(request))


def _upload_errors(result):
    return {"errors": [e.as_dict() for e in result.errors], "count": len(result.errors), "truncated": result.truncated}


@require_POST
def dataset_create(request):
    _require_training(request)
    form = DatasetUploadForm(request.POST, request.FILES, departments=selectors.dataset_departments(user=request.user))
    upload_errors = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            content = read_upload(data["file"])
            version = services.dataset_upload(
                actor=request.user, file_name=data["file"].name, data=content, fmt=data["format"],
                department=data["department"], name=data["name"], description=data["description"],
                ip=client_ip(request),
            )
        except services.DatasetUploadInvalid as exc:
            upload_errors = _upload_errors(exc.result)
        except forms.ValidationError as exc:
            form.add_error("file", exc)
        else:
            messages.success(request, _("Imported %(rows)s rows as v1.") % {"rows": version.row_count})
            return redirect("training:datasets:version", pk=version.dataset_id, number=version.number)
    return render(request, "training/datasets/list.html", _list_context(request, form, upload_errors), status=400)


def _detail_context(request, dataset, **extra):
    return {
        "dataset": dataset,
        "versions": selectors.dataset_versions(user=request.user, dataset=dataset),
        "may_change": dataset_policy.user_has_permission_for_instance(request.user, "change", dataset),
        "upload_form": VersionUploadForm(),
        **extra,
    }


def dataset_detail(request, pk):
    dataset = selectors.dataset_get(user=request.user, pk=pk)
    return render(request, "training/datasets/detail.html", _detail_context(request, dataset))


@require_POST
def dataset_version_upload(request, pk):
    dataset = selectors.dataset_get(user=request.user, pk=pk)
    form = VersionUploadForm(request.POST, request.FILES)
    upload_errors = None
    if form.is_valid():
        try:
            version = services.dataset_upload(
                actor=request.user, dataset=dataset, file_name=form.cleaned_data["file"].name,
                data=read_upload(form.cleaned_data["file"]), fmt=form.cleaned_data["format"], ip=client_ip(request),
            )
        except services.DatasetUploadInvalid as exc:
            upload_errors = _upload_errors(exc.result)
        except forms.ValidationError as exc:
            form.add_error("file", exc)
        else:
            messages.success(request, _("Version %(number)s holds %(rows)s rows.") % {"number": version.number, "rows": version.row_count})
            return redirect("training:datasets:version", pk=dataset.pk, number=version.number)
    context = _detail_context(request, dataset, upload_form=form, upload_errors=upload_errors)
    return render(request, "training/datasets/detail.html", context, status=400)


def _report_steps(version):
    steps = []
    for step in version.report.get("steps", []):
        removed = [
            {**r, "reason_label": REASON_LABELS.get(r.get("reason", ""), "")} for r in step.get("removed", [])
        ]
        changed = [
            {**c, "kinds_label": ", ".join(f"{PII_LABELS.get(k, k)} × {n}" for k, n in c.get("kinds", {}).items())}
            for c in step.get("changed", [])
        ]
        steps.append({**step, "label": STEP_LABELS.get(step["step"], step["step"]), "removed": removed, "changed": changed})
    return steps


def _token_lengths(version, tokenizer, measure) -> list[int]:
    """Token lengths of the version's rows; cached, since a version never changes (keyed by tokenizer too)."""
    from django.core.cache import cache

    key = f"dataset-lengths:{version.pk}:{version.content_sha256}:{getattr(tokenizer, 'name_or_path', '')}"
    lengths = cache.get(key)
    if lengths is None:
        conversations = list(version.rows.order_by("index").values_list("messages", flat=True)[:HISTOGRAM_MAX_ROWS])
        lengths = measure(tokenizer, conversations)
        cache.set(key, lengths, 3600)
    return lengths


def _preview(version, rows_page, values):
    """Token chips for the rows on this page, the length histogram and the split, or a message."""
    from .datasets.preview import histogram, preview_row, token_lengths

    try:
        tokenizer = load_tokenizer()
    except TokenizerUnavailable as exc:
        return {"tokenizer_error": str(exc)}
    if not getattr(tokenizer, "chat_template", None):
        return {"tokenizer_error": _("The base model's tokenizer has no chat template: set one before training.")}
    max_length = values["max_length"]
    previews = [(row, preview_row(tokenizer, row.messages, max_length)) for row in rows_page]
    hist = histogram(_token_lengths(version, tokenizer, token_lengths), max_length)
    return {
        "tokenizer_name": getattr(tokenizer, "name_or_path", ""),
        "previews": previews,
        "histogram": hist,
        "histogram_json": {
            "labels": hist["labels"], "counts": hist["counts"], "max_length": max_length,
            "edges": hist["edges"], "label": _("Rows"), "max_label": _("Maximum length"),
        },
        "histogram_sampled": version.row_count > HISTOGRAM_MAX_ROWS,
    }


def version_detail(request, pk, number):
    version = selectors.dataset_version_get(user=request.user, dataset_pk=pk, number=number)
    dataset = version.dataset
    form = PreviewForm(request.GET or None)
    values = form.values()
    rows = selectors.dataset_rows(user=request.user, version=version)
    page = Paginator(rows, PAGE_ROWS).get_page(values["page"])
    split = None
    try:
        train, validation = split_rows(list(rows.only("pk", "index", "content_sha256")),
                                       validation_ratio=values["validation_ratio"], seed=values["seed"])
        split = {"train": len(train), "validation": len(validation), "validation_indices": [r.index for r in validation][:200]}
    except SplitError as exc:
        split = {"error": str(exc)}
    context = {
        "dataset": dataset,
        "version": version,
        "may_change": dataset_policy.user_has_permission_for_instance(request.user, "change", dataset),
        "steps": _report_steps(version),
        "page": page,
        "preview_form": form if form.is_bound else PreviewForm(initial=values),
        "values": values,
        "split": split,
        "clean_form": CleaningForm(),
        "augment_form": AugmentForm(),
        "report_json": json.dumps({k: v for k, v in version.report.items() if k != "steps"}, ensure_ascii=False, indent=1)[:4000],
        **_preview(version, page.object_list, values),
    }
    return render(request, "training/datasets/version.html", context)


@require_POST
def version_clean(request, pk, number):
    version = selectors.dataset_version_get(user=request.user, dataset_pk=pk, number=number)
    form = CleaningForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the cleaning options: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("training:datasets:version", pk=pk, number=number)
    try:
        new, created = services.dataset_clean(
            actor=request.user, version=version, options=CleaningOptions(**form.cleaned_data), ip=client_ip(request)
        )
    except services.DatasetOperationError as exc:
        messages.error(request, str(exc))
        return redirect("training:datasets:version", pk=pk, number=number)
    if not created:
        messages.info(request, _("Cleaning changed nothing: the latest version already holds these rows."))
    else:
        messages.success(request, _("Cleaned into v%(number)s (%(rows)s rows).") % {"number": new.number, "rows": new.row_count})
    return redirect("training:datasets:version", pk=pk, number=new.number)


@require_POST
def version_augment(request, pk, number):
    version = selectors.dataset_version_get(user=request.user, dataset_pk=pk, number=number)
    form = AugmentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the augmentation options: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("training:datasets:version", pk=pk, number=number)
    try:
        new, _created = services.dataset_augment(actor=request.user, version=version, ip=client_ip(request), **form.cleaned_data)
    except services.DatasetOperationError as exc:
        messages.error(request, str(exc))
        return redirect("training:datasets:version", pk=pk, number=number)
    messages.success(request, _("Augmented into v%(number)s (%(rows)s rows).") % {"number": new.number, "rows": new.row_count})
    return redirect("training:datasets:version", pk=pk, number=new.number)


def version_export(request, pk, number):
    """The version as OpenAI-style JSONL (messages, and rejected for preference pairs)."""
    version = selectors.dataset_version_get(user=request.user, dataset_pk=pk, number=number)
    lines = []
    for row in selectors.dataset_rows(user=request.user, version=version):
        record = {"messages": row.messages}
        if row.rejected:
            record["rejected"] = row.rejected
        lines.append(json.dumps(record, ensure_ascii=False))
    audit_log(actor=request.user, action=AuditAction.DOWNLOAD, obj=version, department=version.dataset.department,
              ip=client_ip(request), dataset=version.dataset_id, number=version.number)
    response = HttpResponse("\n".join(lines) + "\n", content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dataset-{version.dataset_id}-v{version.number}.jsonl"'
    return response


def _endpoint_configured() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "TRAINING_LLM_BACKEND", None))


def _trained_model_versions(user):
    """The trained model versions `user` may see (the jobs engineer's registry), or None without one."""
    try:
        from .policy_jobs import model_version_policy
    except ImportError:
        return None
    return model_version_policy.instances_user_has_permission_for(user, "view").exclude(kind="base")


def knowledge_create(request):
    _require_training(request)
    from knowledge.policy import knowledge_base_policy

    form = KnowledgeDatasetForm(
        request.POST or None,
        departments=selectors.dataset_departments(user=request.user),
        knowledge_bases=knowledge_base_policy.instances_user_has_permission_for(request.user, "view").order_by("name"),
        model_versions=_trained_model_versions(request.user),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        since = data["since"]
        if since is None and data.get("since_model") is not None:
            since = services.knowledge_cutoff_for_model(data["since_model"])
        if data["use_model"] and _endpoint_configured():
            # A model endpoint may take minutes per document: run it as a job and show its progress.
            job = services.dataset_from_knowledge_enqueue(
                actor=request.user, department=data["department"], name=data["name"],
                knowledge_base_ids=[kb.pk for kb in data["knowledge_bases"]], since=since,
            )
            return redirect("core:job_detail", job_id=job.pk)
        try:
            version = services.dataset_from_knowledge(
                actor=request.user, department=data["department"], name=data["name"],
                knowledge_base_ids=[kb.pk for kb in data["knowledge_bases"]] or None, since=since,
                use_model=data["use_model"], ip=client_ip(request),
            )
        except services.DatasetOperationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Generated %(rows)s question-answer pairs.") % {"rows": version.row_count})
            return redirect("training:datasets:version", pk=version.dataset_id, number=version.number)
    status = 400 if request.method == "POST" else 200
    return render(request, "training/datasets/knowledge.html", {"form": form}, status=status)




def distill_create(request):
    """Distillation: a teacher model endpoint answers prompts (typed, a text file, or the questions of a
    dataset version) in a background job; its result links the new version."""
    _require_training(request)
    form = DistillationForm(
        request.POST or None, request.FILES or None,
        departments=selectors.dataset_departments(user=request.user),
        teachers=selectors.distillation_teachers(user=request.user),
        dataset_versions=dataset_version_policy.instances_user_has_permission_for(request.user, "view")
        .select_related("dataset").order_by("-created_at"),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        prompts = data["prompts"].splitlines() + data["prompts_file"]
        if data["prompts_from"] is not None:
            prompts += selectors.distillation_prompts(user=request.user, version=data["prompts_from"])
        try:
            job = services.dataset_distill_enqueue(
                actor=request.user, department=data["department"], endpoint=data["teacher"], prompts=prompts,
                name=data["name"], system_prompt=data["system_prompt"], max_tokens=data["max_tokens"],
                prompts_from=data["prompts_from"],
            )
        except services.DatasetOperationError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("core:job_detail", job_id=job.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "training/datasets/distill.html", {"form": form}, status=status)
