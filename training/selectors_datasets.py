"""Every read of datasets, taking the acting user."""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from .models import Dataset, DatasetRow, DatasetVersion
from .policy import dataset_policy, dataset_version_policy, training_departments


def dataset_list(*, user: Any) -> QuerySet[Dataset]:
    return dataset_policy.instances_user_has_permission_for(user, "view").select_related(
        "department", "latest_version"
    )


def dataset_get(*, user: Any, pk: Any, action: str = "view") -> Dataset:
    return dataset_policy.instance_for_user(user, action, pk)


def dataset_versions(*, user: Any, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset_version_policy.instances_user_has_permission_for(user, "view").filter(dataset=dataset).select_related(
        "created_by"
    )


def dataset_version_get(*, user: Any, dataset_pk: Any, number: Any) -> DatasetVersion:
    versions = dataset_version_policy.instances_user_has_permission_for(user, "view")
    try:
        pk = versions.filter(dataset_id=int(dataset_pk), number=int(number)).values_list("pk", flat=True)[0]
    except (IndexError, ValueError, TypeError):
        pk = None
    return dataset_version_policy.instance_for_user(user, "view", pk)


def dataset_rows(*, user: Any, version: DatasetVersion) -> QuerySet[DatasetRow]:
    if not dataset_version_policy.user_has_permission_for_instance(user, "view", version):
        return DatasetRow.objects.none()
    return DatasetRow.objects.filter(version=version).order_by("index")


def dataset_departments(*, user: Any):
    return training_departments(user).order_by("name")


def chat_feedback_records(*, user: Any, department: Any, since=None, limit: int = 5000) -> tuple[list[dict], int]:
    """Chat feedback in the shape of training.datasets.feedback, for a dataset of `department` built by
    `user`. Conversations are their owner's alone: only feedback given by a member of `department` on
    their own conversation is taken, so a dataset, which that department's admins read, never carries
    another department's conversations. Of those, only feedback whose every retrieved chunk `user` may
    read, and every chunk retrieved earlier in the same conversation (the answer saw those turns),
    enters; the others are counted as withheld (a count within the department only) and none of their
    text is copied. Each record also lists, in `knowledge_base_ids`, every knowledge base its answer
    drew on (its own and the earlier turns' context), so the dataset records them all.
    Returns (records, withheld)."""
    from accounts.models import Membership
    from chat.models import Feedback, Message, Role
    from knowledge.models import Chunk
    from knowledge.policy import chunk_policy

    if department is None:
        return [], 0
    department_id = department if isinstance(department, int) else department.pk
    members = Membership.objects.filter(department_id=department_id).values("user_id")
    feedback = Feedback.objects.select_related("message").filter(
        user_id__in=members, message__conversation__user_id=F("user_id")
    ).order_by("pk")
    if since is not None:
        feedback = feedback.filter(updated_at__gte=since)
    feedback = list(feedback[:limit])

    # The chunks retrieved by the earlier answers of each conversation: the history the answer saw.
    earlier: dict[int, list[tuple[int, list[int]]]] = {}
    conversations = {f.message.conversation_id for f in feedback}
    for message in Message.objects.filter(conversation_id__in=conversations, role=Role.ASSISTANT).values(
        "pk", "conversation_id", "retrieved"
    ):
        earlier.setdefault(message["conversation_id"], []).append((message["pk"], _chunk_ids_of(message["retrieved"])))

    def history_ids(f) -> list[int]:
        return [i for pk, ids in earlier.get(f.message.conversation_id, []) if pk < f.message_id for i in ids]

    wanted = {i for f in feedback for i in [*_ints(f.retrieved_chunk_ids), *history_ids(f)]}
    readable = set(chunk_policy.instances_user_has_permission_for(user, "view").filter(pk__in=wanted).values_list("pk", flat=True))
    chunks = {c.pk: c for c in Chunk.objects.filter(pk__in=readable).only("pk", "text", "version_id", "knowledge_base_id")}
    records, withheld = [], 0
    for f in feedback:
        ids, history = _ints(f.retrieved_chunk_ids), history_ids(f)
        if any(i not in chunks for i in [*ids, *history]):
            withheld += 1
            continue
        records.append({
            "id": f.pk, "question": f.question, "answer": f.answer, "correction": f.correction,
            "thumbs": "up" if f.rating > 0 else "down",
            "context": [{"id": i, "text": chunks[i].text, "version_id": chunks[i].version_id,
                         "knowledge_base_id": chunks[i].knowledge_base_id} for i in ids],
            "knowledge_base_ids": sorted({chunks[i].knowledge_base_id for i in [*ids, *history]}),
        })
    return records, withheld


def _ints(values) -> list[int]:
    """The integer ids of a JSON list; anything else in it becomes -1, an id no chunk has, so that a
    feedback whose context cannot be told is withheld rather than taken without it."""
    values = values if isinstance(values, list) else []
    return [i if isinstance(i, int) and not isinstance(i, bool) else -1 for i in values]


def _chunk_ids_of(retrieved) -> list[int]:
    """The chunk ids of a message's `retrieved` list."""
    retrieved = retrieved if isinstance(retrieved, list) else []
    return _ints([r.get("chunk_id") if isinstance(r, dict) else None for r in retrieved])


def distillation_teachers(*, user: Any):
    """The model endpoints a teacher may be (enabled, OpenAI-compatible), for a user who may build
    datasets somewhere; their names and models only are shown, never their keys."""
    from chat.models import ModelEndpoint

    if not training_departments(user).exists():
        return ModelEndpoint.objects.none()
    return ModelEndpoint.objects.filter(enabled=True, kind="openai").order_by("name")


def distillation_prompts(*, user: Any, version: DatasetVersion) -> list[str]:
    """The last user turn of every row of a version `user` may see (e.g. the questions of the
    knowledge base's QA pairs): the prompts a teacher answers."""
    return [row.prompt for row in dataset_rows(user=user, version=version) if row.prompt.strip()]


def feedback_rows_outside_their_department() -> list[dict]:
    """Dataset versions holding rows taken from chat feedback that a dataset of their department may
    not hold today: feedback of someone who is not a member of the dataset's department, feedback on
    someone else's conversation, or feedback that no longer exists (it cannot be told). Feedback
    datasets built before the eighth session took every department's feedback. An operator's audit,
    not a user's read (`manage.py feedback_datasets_audit`), so it takes no user."""
    from accounts.models import Membership
    from chat.models import Feedback

    rows = list(DatasetRow.objects.filter(meta__has_any_keys=["feedback_id", "chosen_from_feedback_id"]).values_list(
        "version_id", "version__dataset__department_id", "meta"))

    def feedback_ids(meta) -> list[int]:
        return [i for i in (meta.get("feedback_id"), meta.get("chosen_from_feedback_id")) if isinstance(i, int)]

    wanted = {i for _, _, meta in rows for i in feedback_ids(meta)}
    owners = {pk: (user_id, owner_id) for pk, user_id, owner_id in Feedback.objects.filter(pk__in=wanted).values_list(
        "pk", "user_id", "message__conversation__user_id")}
    members = set(Membership.objects.filter(user_id__in={u for u, _ in owners.values()}).values_list(
        "user_id", "department_id"))

    def allowed(feedback_id: int, department_id: int) -> bool:
        user_id, owner_id = owners.get(feedback_id, (None, None))
        return user_id is not None and user_id == owner_id and (user_id, department_id) in members

    outside: dict[int, int] = {}
    for version_id, department_id, meta in rows:
        if not all(allowed(i, department_id) for i in feedback_ids(meta)):
            outside[version_id] = outside.get(version_id, 0) + 1
    versions = DatasetVersion.objects.filter(pk__in=outside).select_related("dataset__department").order_by("pk")
    return [{"dataset": v.dataset_id, "name": v.dataset.name, "department": v.dataset.department.code,
             "version": v.number, "rows": v.row_count, "rows_outside": outside[v.pk]} for v in versions]
