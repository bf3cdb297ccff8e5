"""Background work for datasets: generation from the knowledge base through a model endpoint, and
distillation (a teacher model endpoint answers prompts)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.dateparse import parse_datetime

from accounts.models import Department, User
from core.jobs import JobFailed, register
from core.models import Job
from core.services import job_progress

from . import services_datasets as services


@register(services.KIND_FROM_KNOWLEDGE)
def dataset_from_knowledge_job(job: Job) -> dict:
    params = job.params
    actor = User.objects.get(pk=params["actor"], is_active=True)
    version = services.dataset_from_knowledge(
        actor=actor, department=Department.objects.get(pk=params["department"]), name=params["name"],
        knowledge_base_ids=params.get("knowledge_base_ids") or None,
        since=parse_datetime(params["since"]) if params.get("since") else None, use_model=params.get("use_model", True),
        progress=lambda fraction, message: job_progress(job=job, fraction=fraction, message=message),
    )
    return {"dataset": version.dataset.name, "version": version.number, "rows": version.row_count,
            "url": reverse("training:datasets:version", args=[version.dataset_id, version.number])}


@register(services.KIND_DISTILL)
def dataset_distill_job(job: Job) -> dict:
    from chat.models import ModelEndpoint

    from .models import DatasetVersion

    params = job.params
    actor = User.objects.get(pk=params["actor"], is_active=True)
    source = params.get("prompts_from_version")
    source = DatasetVersion.objects.select_related("dataset").get(pk=source) if source is not None else None
    try:
        version = services.dataset_distill(
            actor=actor, department=Department.objects.get(pk=params["department"]), name=params["name"],
            endpoint=ModelEndpoint.objects.filter(pk=params["endpoint"]).first(), prompts=params["prompts"],
            system_prompt=params.get("system_prompt", ""), max_tokens=params.get("max_tokens", 512),
            prompts_from=source,
            progress=lambda fraction, message: job_progress(job=job, fraction=fraction, message=message),
        )
    except services.DatasetOperationError as exc:
        raise JobFailed(str(exc)) from None  # the teacher's failure is the user's to read
    return {"dataset": version.dataset.name, "version": version.number, "rows": version.row_count,
            "teacher": version.report["teacher"]["model"] or version.report["teacher"]["endpoint"],
            "url": reverse("training:datasets:version", args=[version.dataset_id, version.number])}
