"""Reads of knowledge health, always for an acting user (scoped by health/policy.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from knowledge.policy import document_policy
from knowledge.models import Chunk, Document, DocumentState, IngestionStatus, Review, ReviewState, VersionIngestion

from .models import CarryOver, Conflict, FindingStatus, KnowledgeBaseHealth
from .policy import carry_over_policy, conflict_policy, health_departments, readable_chunk_ids, readable_document_ids


def highlight(text: str, start: int, end: int, *, around: int = 160) -> str:
    """The passage around the value, escaped, with the value in <mark>."""
    left = max(0, start - around)
    right = min(len(text), end + around)
    html = (
        ("…" if left else "") + escape(text[left:start]) + "<mark>" + escape(text[start:end]) + "</mark>"
        + escape(text[end:right]) + ("…" if right < len(text) else "")
    )
    return mark_safe(html)  # noqa: S308 (every piece escaped above)


@dataclass
class Side:
    document: Document
    version_number: int
    owner: Any
    value: str
    readable: bool
    passage: str = ""
    editable: bool = False


def _sides(user, rows, pairs):
    chunk_ids = {c for pair in pairs for c, _span, _value in pair}
    chunks = {c.pk: c for c in Chunk.objects.filter(pk__in=chunk_ids).select_related(
        "version", "document__owner", "document__knowledge_base__department")}
    readable = readable_chunk_ids(user, chunk_ids)
    editable = set(document_policy.instances_user_has_permission_for(user, "change").filter(
        pk__in={c.document_id for c in chunks.values()}).values_list("pk", flat=True))
    out = []
    for row, pair in zip(rows, pairs, strict=True):
        sides = []
        for chunk_id, span, value in pair:
            chunk = chunks[chunk_id]
            ok = chunk_id in readable
            sides.append(Side(document=chunk.document, version_number=chunk.version.number, owner=chunk.document.owner,
                              value=value if ok else "", readable=ok, passage=highlight(chunk.text, *span) if ok else "",
                              editable=ok and chunk.document_id in editable))
        out.append((row, sides))
    return out


def conflict_list(*, user: Any, status: str = FindingStatus.OPEN, limit: int = 200) -> list[tuple[Conflict, list[Side]]]:
    rows = list(conflict_policy.instances_user_has_permission_for(user, "view").filter(status=status)[:limit])
    pairs = [((r.chunk_a_id, r.span_a, r.value_a), (r.chunk_b_id, r.span_b, r.value_b)) for r in rows]
    out = _sides(user, rows, pairs)
    for row, (a, b) in out:  # a side the user may not read lends no words, its value included
        row.value_a, row.value_b = a.value, b.value
    return out


def carry_over_list(*, user: Any, status: str = FindingStatus.OPEN, limit: int = 200):
    """Each finding with its stale passage, and the change that made it stale when readable."""
    rows = list(carry_over_policy.instances_user_has_permission_for(user, "view").filter(status=status)
                .select_related("change_document", "change_version", "previous_version")[:limit])
    pairs = [((r.chunk_id, r.span, r.old_value),) for r in rows]
    readable_changes = readable_document_ids(user, {r.change_document_id for r in rows})
    for row in rows:
        if row.change_document_id not in readable_changes:
            row.new_value = ""  # the new value is the changed document's words
    return [(row, sides[0], row.change_document_id in readable_changes) for row, sides in _sides(user, rows, pairs)]


def past_review_by_count(*, user: Any) -> int:
    """Live documents of the departments `user` watches whose review-by date has passed."""
    documents = Document.objects.filter(knowledge_base__department__in=health_departments(user).values("pk"))
    return documents.exclude(state=DocumentState.ARCHIVED).filter(review_by__lt=timezone.localdate()).count()


def open_conflict_count(*, user: Any) -> int:
    return conflict_policy.instances_user_has_permission_for(user, "view").filter(status=FindingStatus.OPEN).count()


def open_carry_over_count(*, user: Any) -> int:
    return carry_over_policy.instances_user_has_permission_for(user, "view").filter(status=FindingStatus.OPEN).count()


def conflict_get(*, user: Any, pk: Any, action: str = "view") -> Conflict:
    return conflict_policy.instance_for_user(user, action, pk)


def carry_over_get(*, user: Any, pk: Any, action: str = "view") -> CarryOver:
    return carry_over_policy.instance_for_user(user, action, pk)


def overview(*, user: Any, days: int = 30) -> dict:
    """The figures of the overview, each over the departments whose knowledge `user` watches."""
    departments = health_departments(user).values("pk")
    documents = Document.objects.filter(knowledge_base__department__in=departments)
    by_state = dict(documents.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    today = timezone.localdate()
    conflicts = conflict_policy.instances_user_has_permission_for(user, "view")
    carry_overs = carry_over_policy.instances_user_has_permission_for(user, "view")
    since = timezone.now() - dt.timedelta(days=days)

    def per_day(queryset):
        counts = dict(queryset.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
                      .values_list("day").annotate(n=Count("pk")).values_list("day", "n"))
        return [counts.get(today - dt.timedelta(days=d), 0) for d in range(days - 1, -1, -1)]

    chat = _chat_figures(departments, since=since, per_day=per_day)
    return {
        **chat,
        "running_training_jobs": _running_training_jobs(user, departments),
        "documents_by_state": [(label, by_state.get(value, 0)) for value, label in DocumentState.choices],
        "pending_reviews": Review.objects.filter(document__in=documents, state=ReviewState.OPEN).count(),
        "past_review_by": past_review_by_count(user=user),
        "open_conflicts": open_conflict_count(user=user),
        "open_carry_overs": open_carry_over_count(user=user),
        "gap_groups": gap_group_count(user=user),
        "unretrieved_documents": unretrieved_documents(user=user).count(),
        "unretrieved_days": unretrieved_days(),
        "ingestion_failures": VersionIngestion.objects.filter(
            status=IngestionStatus.FAILED, version__document__in=documents).count(),
        "trend": {
            "days": [(today - dt.timedelta(days=d)).isoformat() for d in range(days - 1, -1, -1)],
            "conflicts": per_day(conflicts),
            "carry_overs": per_day(carry_overs),
            "questions": chat.pop("questions_per_day"),
        },
    }


def gap_group_count(*, user: Any) -> int:
    """Groups of unanswered questions this user may see, in the window, not yet drafted."""
    from .policy import gap_question_policy
    from .services import gap_window_days

    since = timezone.now() - dt.timedelta(days=gap_window_days())
    visible = gap_question_policy.instances_user_has_permission_for(user, "view").filter(
        asked_at__gte=since, group__isnull=False, group__draft_document__isnull=True)
    return visible.values("group").distinct().count()


def _chat_figures(departments, *, since, per_day) -> dict:
    """Questions asked by members of the watched departments (assistant turns), over the window."""
    from accounts.models import Membership
    from chat.models import Message, MessageStatus, Role

    askers = Membership.objects.filter(department__in=departments).values("user")
    answers = Message.objects.filter(role=Role.ASSISTANT, conversation__user__in=askers)
    recent = answers.filter(created_at__gte=since)
    total = recent.count()
    no_answer = recent.filter(status=MessageStatus.NO_KNOWLEDGE).count()
    rated = recent.filter(feedback__isnull=False).distinct().count()
    return {
        "questions": total,
        "no_answer_rate": round(100 * no_answer / total, 1) if total else 0,
        "feedback_rate": round(100 * rated / total, 1) if total else 0,
        "questions_per_day": per_day(answers),
    }


def _running_training_jobs(user, departments) -> int:
    """Fine-tuning jobs of the watched departments that this user may see and that are running."""
    from core.models import JobStatus
    from training.policy_jobs import fine_tuning_job_policy

    jobs = fine_tuning_job_policy.instances_user_has_permission_for(user, "view").filter(department__in=departments)
    return jobs.filter(cancelled_at__isnull=True, run_job__status=JobStatus.RUNNING).count()  # as FineTuningJob.status


def stale_list(*, user: Any):
    """Stale documents of the departments `user` watches, with their reasons (labels)."""
    from .models import StaleReason
    from .services import stale_documents

    documents = Document.objects.filter(knowledge_base__department__in=health_departments(user).values("pk"))
    stale = stale_documents(documents=documents)
    editable = set(document_policy.instances_user_has_permission_for(user, "change").filter(pk__in=list(stale)).values_list("pk", flat=True))
    rows = Document.objects.filter(pk__in=list(stale)).select_related("owner", "knowledge_base__department").order_by("title")
    labels = dict(StaleReason.choices)
    return [(doc, [labels[r] for r in stale[doc.pk]], doc.pk in editable) for doc in rows]


def notification_list(*, user: Any, limit: int = 100):
    """The user's notifications; one whose subject they may no longer read (a stale document's
    title, a question example, findings of knowledge they no longer watch) keeps no content."""
    from .models import Notification

    rows = list(Notification.objects.filter(user=user)[:limit])
    allowed = _notifications_still_visible(user, rows)
    for row in rows:
        row.hidden = row.pk not in allowed
        if row.hidden:
            row.message = row.subject = row.url = ""
    return rows


def _notifications_still_visible(user: Any, rows) -> set[int]:
    from functools import reduce
    from operator import or_

    from django.db.models import Q

    from .models import NotificationKind
    from .policy import gap_question_policy, user_may_watch

    def target(row) -> int | None:
        pk = row.event.partition(":")[2]
        return int(pk) if pk.isascii() and pk.isdigit() else None

    visible: set[int] = set()
    stale = [row for row in rows if row.kind == NotificationKind.STALE]
    documents = readable_document_ids(user, {target(row) for row in stale} - {None})
    visible.update(row.pk for row in stale if target(row) in documents)
    gaps = [row for row in rows if row.kind == NotificationKind.GAP and row.subject]
    if gaps:  # the example is shown while it is (part of) a question the user may still see
        questions = gap_question_policy.instances_user_has_permission_for(user, "view").filter(
            reduce(or_, [Q(question__contains=row.subject) for row in gaps])).values_list("question", flat=True)
        texts = list(questions)
        visible.update(row.pk for row in gaps if any(row.subject in text for text in texts))
    findings = [row for row in rows if row.kind in (NotificationKind.CONFLICT, NotificationKind.CARRY_OVER)]
    if findings and user_may_watch(user):
        visible.update(row.pk for row in findings)
    return visible


def unread_count(*, user: Any) -> int:
    from .models import Notification

    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_kinds(*, user: Any):
    from .models import NotificationKind, NotificationOptOut

    off = set(NotificationOptOut.objects.filter(user=user).values_list("kind", flat=True))
    return [(value, label, value not in off) for value, label in NotificationKind.choices]


@dataclass
class GapRow:
    group: Any
    count: int
    examples: list[str]
    no_knowledge: int
    negative: int
    last_asked: Any
    draft: Document | None


def gap_group_list(*, user: Any, examples: int = 3, limit: int = 200) -> list[GapRow]:
    """Groups of unanswered questions, counted and exemplified by the questions `user` may see
    (asked against a knowledge base they manage), within the gap window; largest first."""
    from .models import GapReason
    from .policy import gap_question_policy
    from .services import gap_window_days

    since = timezone.now() - dt.timedelta(days=gap_window_days())
    questions = (gap_question_policy.instances_user_has_permission_for(user, "view")
                 .filter(asked_at__gte=since, group__isnull=False).select_related("group")
                 .defer("vector", "group__centroid").order_by("-asked_at", "-pk"))
    rows: dict[int, GapRow] = {}
    for q in questions:
        row = rows.get(q.group_id)
        if row is None:
            row = rows[q.group_id] = GapRow(group=q.group, count=0, examples=[], no_knowledge=0, negative=0,
                                            last_asked=q.asked_at, draft=None)
        row.count += 1
        if q.reason == GapReason.NO_KNOWLEDGE:
            row.no_knowledge += 1
        else:
            row.negative += 1
        text = q.question.strip()
        if len(row.examples) < examples and text not in row.examples:
            row.examples.append(text)
    drafts = {g.draft_document_id for g in (r.group for r in rows.values()) if g.draft_document_id}
    readable = {d.pk: d for d in document_policy.instances_user_has_permission_for(user, "view").filter(pk__in=drafts)}
    for row in rows.values():
        row.draft = readable.get(row.group.draft_document_id)  # a draft this user may not open is not named
    return sorted(rows.values(), key=lambda r: (-r.count, -r.last_asked.timestamp(), r.group.pk))[:limit]


def gap_group_get(*, user: Any, pk: Any):
    from .policy import gap_group_policy

    return gap_group_policy.instance_for_user(user, "view", pk)


def source_failure_days(*, knowledge_base) -> int:
    """After how many days of failing syncs the knowledge base's source documents are stale (its
    health settings, else the default)."""
    row = KnowledgeBaseHealth.objects.filter(knowledge_base=knowledge_base).values_list("source_failure_days", flat=True).first()
    return row if row is not None else KnowledgeBaseHealth._meta.get_field("source_failure_days").default


def unretrieved_days() -> int:
    from django.conf import settings

    return int(getattr(settings, "HEALTH_UNRETRIEVED_DAYS", 90))


def unretrieved_documents(*, user: Any):
    """Live documents of the knowledge bases `user` manages that search has not returned for the
    window: none of their passages retrieved since (retrieval's last-retrieved dates), or never
    retrieved and created before the window. Each with its last retrieved day (or None)."""
    from django.db.models import Max, Q

    from knowledge.selectors import managed_knowledge_bases

    cutoff = timezone.localdate() - dt.timedelta(days=unretrieved_days())
    managed = managed_knowledge_bases(user=user).values("pk")
    return (Document.objects.filter(knowledge_base__in=managed, live_version__isnull=False)
            .exclude(state=DocumentState.ARCHIVED)
            .annotate(last_retrieved=Max("chunks__retrieval__last_retrieved"))
            .filter(Q(last_retrieved__lt=cutoff) | Q(last_retrieved__isnull=True, created_at__date__lt=cutoff))
            .select_related("knowledge_base__department", "owner")
            .order_by("knowledge_base__name", "knowledge_base_id", F("last_retrieved").asc(nulls_first=True), "title"))


@dataclass
class Waiting:
    """One thing waiting for the user's action on the home page: how many, and where."""

    count: int
    label: str
    url: str


def waiting_for(*, user: Any) -> list[Waiting]:
    """What waits for `user`, for the home page: reviews to decide, their own changes sent back,
    and, where they watch knowledge health, open findings, stale documents, unanswered question
    groups and unread notifications. Each counted through the policy of what it counts, in one
    query each (stale documents by their review-by date only: the full rule reads every sync); only
    the non-zero ones."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from accounts.policy import is_active_user
    from knowledge.selectors import my_review_list, review_inbox

    from .policy import user_may_watch

    if not is_active_user(user):
        return []
    sent_back = my_review_list(user=user, state=ReviewState.CHANGES_REQUESTED).filter(
        version_id=F("document__latest_version_id"))  # not reworked since
    items = [
        Waiting(review_inbox(user=user).count(), _("Reviews waiting for your decision"), reverse("knowledge:review_inbox")),
        Waiting(sent_back.count(), _("Your changes sent back for rework"), reverse("knowledge:review_inbox")),
    ]
    if user_may_watch(user):
        items += [
            Waiting(open_conflict_count(user=user), _("Open conflicts"), reverse("health:conflicts")),
            Waiting(open_carry_over_count(user=user), _("May still state an old value"), reverse("health:carry_overs")),
            Waiting(past_review_by_count(user=user), _("Past their review-by date"), reverse("health:stale")),
            Waiting(gap_group_count(user=user), _("Unanswered question groups"), reverse("health:gaps")),
            Waiting(unread_count(user=user), _("Unread notifications"), reverse("health:notifications")),
        ]
    return [item for item in items if item.count]
