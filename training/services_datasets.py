"""Every write to datasets: create a dataset, add a version (upload, cleaning, augmentation,
knowledge base, feedback). Each version is written in one transaction with all its rows, and
audited; nothing is ever half-imported."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max

from accounts.models import Department
from core.audit import AuditAction, audit_log

from .models import Dataset, DatasetRow, DatasetVersion, row_payload, row_payload_sha256, rows_sha256
from .policy import dataset_policy

# Rows are inserted in batches of this size (one INSERT each).
ROW_BATCH = 1000


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def normalize_payloads(payloads: list[dict]) -> list[dict]:
    return [row_payload(**p) for p in payloads]


@transaction.atomic
def dataset_create(
    *, actor: Any, department: Department, name: str, description: str = "", ip: str | None = None
) -> Dataset:
    _require(dataset_policy.user_may_add_in(actor, department))
    dataset = Dataset(name=name.strip(), description=description, department=department, created_by=actor)
    dataset.full_clean(exclude=["latest_version"])
    dataset.save()
    audit_log(actor=actor, action=AuditAction.CREATE, obj=dataset, department=department, ip=ip)
    return dataset


@transaction.atomic
def dataset_version_create(
    *,
    actor: Any,
    dataset: Dataset,
    payloads: list[dict],
    origin: str,
    parent: DatasetVersion | None = None,
    report: dict | None = None,
    note: str = "",
    knowledge_base_ids: list[int] | tuple[int, ...] = (),
    ip: str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Add a version holding exactly `payloads`; returns (version, created). Content equal to
    the latest version's makes no new version (returns the latest, False)."""
    _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    rows = normalize_payloads(payloads)
    content_sha256 = rows_sha256(rows)
    latest = dataset.latest_version
    if latest is not None and latest.content_sha256 == content_sha256:
        return latest, False
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, parent=parent if parent is not None else latest, origin=origin,
        content_sha256=content_sha256, row_count=len(rows), report=report or {}, note=note[:500], created_by=actor,
    )
    DatasetRow.objects.bulk_create(
        [DatasetRow(version=version, index=i, content_sha256=row_payload_sha256(p), **p) for i, p in enumerate(rows)],
        batch_size=ROW_BATCH,
    )
    dataset.latest_version = version
    dataset.save(update_fields=["latest_version", "updated_at"])
    if knowledge_base_ids:
        dataset.source_knowledge_bases.add(*knowledge_base_ids)
    audit_log(
        actor=actor, action=AuditAction.EDIT if number > 1 else AuditAction.CREATE, obj=version,
        department=dataset.department, ip=ip, dataset=dataset.pk, number=number, origin=origin,
        rows=len(rows), content_sha256=content_sha256,
    )
    return version, True


class DatasetUploadInvalid(Exception):
    """The file has errors: nothing was imported. `result.errors` lists them per row."""

    def __init__(self, result):
        super().__init__(f"{len(result.errors)} error(s)")
        self.result = result


def dataset_upload(
    *,
    actor: Any,
    file_name: str,
    data: bytes,
    fmt: str = "auto",
    dataset: Dataset | None = None,
    department: Department | None = None,
    name: str = "",
    description: str = "",
    ip: str | None = None,
) -> DatasetVersion:
    """Validate the whole file first; then, in one transaction, create the dataset (when none is
    given) and its new version. Raises DatasetUploadInvalid with every row error otherwise."""
    from .datasets.formats import parse_upload

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    result = parse_upload(file_name, data, fmt)
    if result.errors:
        raise DatasetUploadInvalid(result)
    with transaction.atomic():
        if dataset is None:
            dataset = dataset_create(actor=actor, department=department, name=name or file_name, description=description, ip=ip)
        version, _created = dataset_version_create(
            actor=actor, dataset=dataset, payloads=result.payloads, origin="upload",
            report={"file_name": file_name[:255], "format": result.format, "rows": len(result.payloads)},
            note=file_name[:500], ip=ip,
        )
    return version


class DatasetOperationError(Exception):
    """A cleaning/augmentation/generation request that cannot run: the message is shown as is."""


def version_payloads(version: DatasetVersion) -> list[dict]:
    return [row.payload() for row in version.rows.order_by("index")]


def dataset_clean(*, actor: Any, version: DatasetVersion, options, ip: str | None = None) -> tuple[DatasetVersion, bool]:
    """A new version: `version`'s rows after the chosen cleaning steps, with the report of each."""
    from django.utils.translation import gettext as _

    from .datasets.cleaning import clean
    from .datasets.tokenizer import TokenizerUnavailable, load_tokenizer

    dataset = version.dataset
    _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    tokenizer = None
    if options.min_answer_tokens or options.max_tokens:
        try:
            tokenizer = load_tokenizer()
        except TokenizerUnavailable as exc:
            raise DatasetOperationError(str(exc)) from exc
    cleaned, steps = clean(version_payloads(version), options, tokenizer)
    if not cleaned:
        raise DatasetOperationError(_("Cleaning would remove every row; nothing was saved."))
    return dataset_version_create(
        actor=actor, dataset=dataset, payloads=cleaned, origin="clean", parent=version,
        report={"source_version": version.number, "steps": steps,
                "tokenizer": str(getattr(tokenizer, "name_or_path", "")) if tokenizer else ""},
        note=_("cleaned from v%(number)s") % {"number": version.number}, ip=ip,
    )


def knowledge_cutoff_for_model(model_version) -> Any:
    """When the knowledge a trained model version learned was snapshotted: the creation of its
    training file (the dataset version), else of the model version itself."""
    job = getattr(model_version, "job", None)
    dataset_version = getattr(job, "dataset_version", None) if job is not None else None
    return dataset_version.created_at if dataset_version is not None else model_version.created_at


def knowledge_versions_for(*, actor: Any, knowledge_base_ids=None, since=None):
    """The live versions of published documents that `actor` may read (knowledge.policy), optionally
    of some knowledge bases only, and optionally only those changed (created or published) since `since`."""
    from django.db.models import Q

    from core.audit import AuditAction
    from core.models import AuditEntry
    from knowledge.models import DocumentState, DocumentVersion
    from knowledge.policy import document_policy, version_policy

    documents = document_policy.instances_user_has_permission_for(actor, "view").filter(
        live_version__isnull=False
    ).exclude(state=DocumentState.ARCHIVED)
    if knowledge_base_ids:
        documents = documents.filter(knowledge_base_id__in=knowledge_base_ids)
    versions = version_policy.instances_user_has_permission_for(actor, "view").filter(
        pk__in=documents.values("live_version_id")
    )
    if since is not None:
        published = AuditEntry.objects.filter(action=AuditAction.PUBLISH, created_at__gte=since).values("version_id")
        versions = versions.filter(Q(created_at__gte=since) | Q(pk__in=published))
    return DocumentVersion.objects.filter(pk__in=versions.values("pk")).select_related(
        "document__knowledge_base"
    ).order_by("document__knowledge_base_id", "document_id")


def dataset_from_knowledge(
    *,
    actor: Any,
    dataset: Dataset | None = None,
    department: Department | None = None,
    name: str = "",
    knowledge_base_ids=None,
    since=None,
    use_model: bool = True,
    backend=None,
    progress=None,
    ip: str | None = None,
) -> DatasetVersion:
    """QA pairs from the published knowledge `actor` may read, one row per pair with the id of its
    source version; a new version of `dataset` (or of a new dataset in `department`). With `since`
    this is the incremental builder: only documents changed since then."""
    from django.utils.translation import gettext as _

    from knowledge.ingestion.selectors import version_text

    from .datasets.endpoint import EndpointMisconfigured, configured_backend
    from .datasets.kb_qa import document_pairs

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    if use_model and backend is None:
        try:
            backend = configured_backend()
        except EndpointMisconfigured as exc:
            raise DatasetOperationError(str(exc)) from exc
    payloads, documents, kb_ids = [], [], set()
    versions = list(knowledge_versions_for(actor=actor, knowledge_base_ids=knowledge_base_ids, since=since))
    for n, version in enumerate(versions):
        document = version.document
        if progress is not None:
            progress(n / max(1, len(versions)), document.title)
        pairs, how = document_pairs(version_text(version), document.title, backend if use_model else None)
        documents.append({"document": document.pk, "title": document.title, "version": version.pk,
                          "number": version.number, "pairs": len(pairs), "how": how})
        # Every knowledge base read is recorded, pairs or not: the report names its documents.
        kb_ids.add(document.knowledge_base_id)
        for pair in pairs:
            payloads.append({
                "messages": [{"role": "user", "content": pair.question}, {"role": "assistant", "content": pair.answer}],
                "method": pair.method, "source_version_ids": [version.pk],
                "meta": {"document_id": document.pk, "title": document.title},
            })
    if not payloads:
        raise DatasetOperationError(
            _("No question-answer pairs: no published document you may read matched (or none had usable text).")
        )
    origin = "incremental" if since is not None else "knowledge"
    report = {
        "documents": documents, "since": since.isoformat() if since else None,
        "backend": getattr(backend, "name", "") if use_model and backend is not None else "",
        "knowledge_bases": sorted(kb_ids),
    }
    with transaction.atomic():
        if dataset is None:
            dataset = dataset_create(actor=actor, department=department, name=name or _("Knowledge QA"), ip=ip)
        version, _created = dataset_version_create(
            actor=actor, dataset=dataset, payloads=payloads, origin=origin, report=report,
            knowledge_base_ids=sorted(kb_ids), ip=ip,
        )
    return version


def dataset_from_feedback(
    *,
    actor: Any,
    records: list[dict],
    dataset: Dataset | None = None,
    department: Department | None = None,
    name: str = "",
    include_thumbs_up: bool = False,
    ip: str | None = None,
    withheld: int = 0,
) -> DatasetVersion:
    """A version from chat feedback in the shape documented in training.datasets.feedback. The caller
    passes only feedback the actor may see (the chat's selector); the knowledge bases of the context
    chunks are recorded, so the dataset stays hidden from whoever cannot read them."""
    from django.utils.translation import gettext as _

    from .datasets.feedback import convert_feedback

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    converted = convert_feedback(records, include_thumbs_up=include_thumbs_up)
    if not converted.payloads:
        raise DatasetOperationError(_("No feedback could become a training example."))
    with transaction.atomic():
        if dataset is None:
            dataset = dataset_create(actor=actor, department=department, name=name or _("Chat feedback"), ip=ip)
        version, _created = dataset_version_create(
            actor=actor, dataset=dataset, payloads=converted.payloads, origin="feedback",
            report={"sft": len(converted.sft), "preference": len(converted.preference), "skipped": converted.skipped,
                    "withheld": withheld},
            knowledge_base_ids=sorted(converted.knowledge_base_ids), ip=ip,
        )
    return version


def dataset_from_chat_feedback(
    *,
    actor: Any,
    department: Department | None = None,
    dataset: Dataset | None = None,
    name: str = "",
    include_thumbs_up: bool = False,
    since=None,
    ip: str | None = None,
) -> DatasetVersion:
    """A version from the chat's Feedback rows that `actor` may build from: corrections become
    examples (question, retrieved context, corrected answer), thumbs-down answers preference pairs.
    Only the feedback of the dataset's department's members is taken (conversations are their
    owner's: a dataset never carries another department's); of it, feedback grounded on knowledge
    the actor cannot read is left out (reported as withheld)."""
    from .selectors_datasets import chat_feedback_records

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
        department = dataset.department
    records, withheld = chat_feedback_records(user=actor, department=department, since=since)
    return dataset_from_feedback(actor=actor, records=records, dataset=dataset, department=department, name=name,
                                 include_thumbs_up=include_thumbs_up, ip=ip, withheld=withheld)


MAX_DISTILLATION_PROMPTS = 5000
MAX_DISTILLATION_PROMPT_CHARS = 20_000  # a prompt or system prompt: more than any teacher's context
KIND_DISTILL = "dataset_distill"


def distillation_inputs_check(*, prompts: list[str], endpoint, system_prompt: str = "") -> list[str]:
    """The prompts without blanks; DatasetOperationError when there are none, too many, one too long,
    or the teacher is not an enabled OpenAI-compatible endpoint (checked before a job is queued, and
    again when it runs)."""
    from django.utils.translation import gettext as _

    prompts = [p.strip() for p in prompts if isinstance(p, str) and p.strip()]
    if not prompts:
        raise DatasetOperationError(_("Give the teacher at least one prompt."))
    if len(prompts) > MAX_DISTILLATION_PROMPTS:
        raise DatasetOperationError(_("At most %(n)s prompts at a time.") % {"n": MAX_DISTILLATION_PROMPTS})
    if any(len(text) > MAX_DISTILLATION_PROMPT_CHARS for text in [*prompts, system_prompt or ""]):
        raise DatasetOperationError(
            _("A prompt or the system prompt is longer than %(n)s characters.") % {"n": MAX_DISTILLATION_PROMPT_CHARS})
    if endpoint is None or endpoint.kind != "openai" or not endpoint.enabled:
        raise DatasetOperationError(_("The teacher must be an enabled OpenAI-compatible model endpoint."))
    return prompts


def conversations_department_id(dataset: Dataset) -> int | None:
    """The department whose members' chat conversations `dataset` holds (rows built from chat
    feedback, or distilled from such rows), else None. Conversations are their owner's: such rows
    stay in that department."""
    from django.db.models import Q

    conversations = DatasetRow.objects.filter(version__dataset=dataset).filter(
        Q(method__startswith="feedback") | Q(meta__has_key="conversations_of"))
    return dataset.department_id if conversations.exists() else None


def distillation_source_check(*, actor: Any, source: DatasetVersion | None, department: Department | None) -> None:
    """Prompts taken from `source` may go only where the source's readers are: `actor` must see it,
    and rows holding a department's chat conversations are distilled into that department only
    (its knowledge bases are inherited by the new dataset: `dataset_distill`)."""
    from django.utils.translation import gettext as _

    from .policy import dataset_version_policy

    if source is None:
        return
    _require(dataset_version_policy.user_has_permission_for_instance(actor, "view", source))
    owner = conversations_department_id(source.dataset)
    if owner is not None and (department is None or department.pk != owner):
        raise DatasetOperationError(_(
            "The prompts of %(dataset)s come from chat conversations of its department: "
            "distil them into that department only.") % {"dataset": source.dataset.name})


def dataset_distill_enqueue(
    *, actor: Any, department: Department, endpoint, prompts: list[str], name: str = "", system_prompt: str = "",
    max_tokens: int = 512, prompts_from: DatasetVersion | None = None,
):
    """dataset_distill as a background job (a teacher may take seconds per prompt): the inputs are
    checked now, the job row shows progress per prompt and its result names the new version.
    `prompts_from`: the version some prompts were taken from, whose restrictions the new dataset keeps."""
    from core.services import job_create

    _require(dataset_policy.user_may_add_in(actor, department))
    distillation_source_check(actor=actor, source=prompts_from, department=department)
    prompts = distillation_inputs_check(prompts=prompts, endpoint=endpoint, system_prompt=system_prompt)
    return job_create(actor=actor, kind=KIND_DISTILL, check_permission=False, params={
        "actor": actor.pk, "department": department.pk, "endpoint": endpoint.pk, "prompts": prompts, "name": name,
        "system_prompt": system_prompt, "max_tokens": max_tokens,
        "prompts_from_version": prompts_from.pk if prompts_from is not None else None,
    })


def dataset_distill(
    *,
    actor: Any,
    prompts: list[str],
    endpoint,
    department: Department | None = None,
    dataset: Dataset | None = None,
    name: str = "",
    system_prompt: str = "",
    max_tokens: int = 512,
    prompts_from: DatasetVersion | None = None,
    ip: str | None = None,
    progress=None,
) -> DatasetVersion:
    """Distillation, first half: a teacher model (an OpenAI-compatible `chat.models.ModelEndpoint`)
    answers `prompts`; the answers become the version's rows, each marked `distillation` with the
    teacher in its meta, and the version's report records the teacher. A job trained on the version
    carries the teacher into its lineage (`job_services.fine_tuning_job_create`). Any teacher error
    writes nothing. Prompts taken from a dataset version (`prompts_from`) keep its restrictions: the
    new dataset records the source dataset's knowledge bases (it stays hidden from whoever cannot
    read them), and rows holding chat conversations stay in their department."""
    from django.utils.translation import gettext as _

    from llm.base import BackendError
    from llm.registry import backend_for_endpoint

    if dataset is None:
        _require(department is not None and dataset_policy.user_may_add_in(actor, department))
    else:
        _require(dataset_policy.user_has_permission_for_instance(actor, "change", dataset))
    distillation_source_check(actor=actor, source=prompts_from,
                              department=dataset.department if dataset is not None else department)
    knowledge_base_ids: list[int] = []
    source_meta: dict = {}
    report_source = None
    if prompts_from is not None:
        knowledge_base_ids = sorted(prompts_from.dataset.source_knowledge_bases.values_list("pk", flat=True))
        owner = conversations_department_id(prompts_from.dataset)
        if owner is not None:
            source_meta["conversations_of"] = owner
        report_source = {"dataset": prompts_from.dataset_id, "version": prompts_from.number,
                         "version_id": prompts_from.pk}
    prompts = distillation_inputs_check(prompts=prompts, endpoint=endpoint, system_prompt=system_prompt)
    teacher = {"endpoint": endpoint.name, "endpoint_id": endpoint.pk, "model": endpoint.model, "base_url": endpoint.base_url}
    try:
        backend = backend_for_endpoint(endpoint)
        payloads = []
        for prompt in prompts:
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": prompt}]
            answer = backend.complete(messages, max_tokens=max_tokens).text.strip()
            if not answer:
                raise DatasetOperationError(_("The teacher returned an empty answer to: %(prompt)s") % {"prompt": prompt[:200]})
            payloads.append({"messages": [*messages, {"role": "assistant", "content": answer}], "method": "distillation",
                             "meta": {"teacher": endpoint.model or endpoint.name, **source_meta}})
            if progress is not None:
                progress(len(payloads) / len(prompts), _("%(done)s of %(total)s prompts answered") % {
                    "done": len(payloads), "total": len(prompts)})
    except BackendError as exc:
        raise DatasetOperationError(_("The teacher model failed: %(error)s") % {"error": exc}) from exc
    with transaction.atomic():
        if dataset is None:
            dataset = dataset_create(actor=actor, department=department, name=name or _("Distilled"), ip=ip)
        report = {"teacher": teacher, "prompts": len(prompts)}
        if report_source is not None:
            report["prompts_from"] = report_source
        version, _created = dataset_version_create(
            actor=actor, dataset=dataset, payloads=payloads, origin="distillation", report=report,
            knowledge_base_ids=knowledge_base_ids, ip=ip,
        )
    return version


def dataset_augment(
    *, actor: Any, version: DatasetVersion, method: str, copies: int = 1, seed: int = 0, backend=None,
    ip: str | None = None,
) -> tuple[DatasetVersion, bool]:
    from django.utils.translation import gettext as _

    from .datasets.augment import augment
    from .datasets.endpoint import EndpointMisconfigured, configured_backend

    _require(dataset_policy.user_has_permission_for_instance(actor, "change", version.dataset))
    if method != "synonym" and backend is None:
        try:
            backend = configured_backend()
        except EndpointMisconfigured as exc:
            raise DatasetOperationError(str(exc)) from exc
        if backend is None:
            raise DatasetOperationError(
                _("Paraphrase and back-translation need a model endpoint: set TRAINING_LLM_BACKEND. Synonym replacement works without one.")
            )
    payloads, report = augment(version_payloads(version), method=method, copies=copies, seed=seed, backend=backend)
    if not report["added"]:
        raise DatasetOperationError(_("Augmentation added no new rows; nothing was saved."))
    report["source_version"] = version.number
    return dataset_version_create(
        actor=actor, dataset=version.dataset, payloads=payloads, origin="augment", parent=version, report=report,
        note=_("augmented from v%(number)s") % {"number": version.number}, ip=ip,
    )


KIND_FROM_KNOWLEDGE = "dataset_from_knowledge"


def dataset_from_knowledge_enqueue(
    *, actor: Any, department: Department, name: str, knowledge_base_ids=None, since=None, use_model: bool = True
):
    """The same as dataset_from_knowledge, as a background job (a model endpoint may take minutes
    per document): the job row shows progress, and its result names the new version."""
    from core.services import job_create

    _require(dataset_policy.user_may_add_in(actor, department))
    return job_create(actor=actor, kind=KIND_FROM_KNOWLEDGE, check_permission=False, params={
        "actor": actor.pk, "department": department.pk, "name": name,
        "knowledge_base_ids": list(knowledge_base_ids or []), "since": since.isoformat() if since else None,
        "use_model": use_model,
    })
