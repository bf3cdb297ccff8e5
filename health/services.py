"""Writes of knowledge health: facts, conflicts, changes not carried over, dismissals."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_log
from knowledge.models import Chunk

from . import facts as fact_lib
from .models import CarryOver, Conflict, Fact, FindingStatus
from .policy import carry_over_policy, conflict_policy, health_departments

logger = logging.getLogger(__name__)
BATCH = 2000


def _extract(chunks) -> list[fact_lib.Fact]:
    """Facts of passages given as (id, document, version, knowledge base, text, heading path) rows."""
    out = []
    for pk, document_id, version_id, kb_id, text, heading in chunks:
        for fact in fact_lib.extract_facts(text, heading_path=heading or (), chunk=pk, document=document_id):
            fact.version = version_id
            fact.knowledge_base = kb_id
            out.append(fact)
    return out


_CHUNK_COLUMNS = ("pk", "document_id", "version_id", "knowledge_base_id", "text", "heading_path")


def _rows(facts: list[fact_lib.Fact]) -> list[Fact]:
    return [
        Fact(chunk_id=f.chunk, document_id=f.document, version_id=f.version, knowledge_base_id=f.knowledge_base,
             kind=f.kind, unit=f.unit, value=f.value[:64], subject=list(f.subject), key=f.key,
             start=f.start, end=f.end, text=f.text[:200])
        for f in facts
    ]


def _as_lib(row: Fact) -> fact_lib.Fact:
    fact = fact_lib.Fact(kind=row.kind, unit=row.unit, value=row.value, subject=tuple(row.subject), start=row.start,
                         end=row.end, text=row.text, chunk=row.chunk_id, document=row.document_id)
    fact.version = row.version_id
    fact.knowledge_base = row.knowledge_base_id
    return fact


def facts_refresh(*, added: list[int], removed: list[int]) -> list[fact_lib.Fact]:
    """Facts follow `Chunk.searchable`: removed passages lose theirs, added ones are read."""
    Fact.objects.filter(chunk_id__in=list(set(added) | set(removed))).delete()
    rows = Chunk.objects.filter(pk__in=added, searchable=True).values_list(*_CHUNK_COLUMNS)
    new = _extract(rows)
    Fact.objects.bulk_create(_rows(new), batch_size=BATCH)
    return new


def _conflict_rows(pairs, skip: set[tuple[int, str]]) -> list[Conflict]:
    out = []
    for pair in pairs:
        a, b = pair.a, pair.b
        if (a.chunk, pair.key) in skip or (b.chunk, pair.key) in skip:
            continue  # already listed as "may still state the old value"
        out.append(Conflict(chunk_a_id=a.chunk, chunk_b_id=b.chunk, document_a_id=a.document, document_b_id=b.document,
                            key=pair.key, kind=a.kind, unit=a.unit, subject=list(a.subject), value_a=a.value[:64],
                            value_b=b.value[:64], span_a=[a.start, a.end], span_b=[b.start, b.end]))
    return out


def _open_carry_over_keys() -> set[tuple[int, str]]:
    return set(CarryOver.objects.filter(status=FindingStatus.OPEN).values_list("chunk_id", "key"))


@transaction.atomic
def published_check(*, added: list[int], removed: list[int]) -> dict:
    """The incremental check when versions go live (or are archived): facts of the passages that
    changed, the new passages' facts against the rest, and what the change did not carry over."""
    now = timezone.now()
    # A side that stopped being searchable changed: its open findings are resolved by that change.
    Conflict.objects.filter(status=FindingStatus.OPEN).filter(chunk_a_id__in=removed).update(status=FindingStatus.RESOLVED, decided_at=now)
    Conflict.objects.filter(status=FindingStatus.OPEN).filter(chunk_b_id__in=removed).update(status=FindingStatus.RESOLVED, decided_at=now)
    CarryOver.objects.filter(status=FindingStatus.OPEN, chunk_id__in=removed).update(status=FindingStatus.RESOLVED, decided_at=now)
    new = facts_refresh(added=added, removed=removed)
    carried = _carry_over_check(new, removed)
    documents = {f.document for f in new}
    keys = {f.key for f in new}
    others = [_as_lib(row) for row in Fact.objects.filter(key__in=keys).exclude(document_id__in=documents)]
    pairs = fact_lib.find_conflicts(new + others, only_against=documents)
    created = Conflict.objects.bulk_create(_conflict_rows(pairs, _open_carry_over_keys()), ignore_conflicts=True, batch_size=BATCH)
    _notify_findings(added)
    return {"facts": len(new), "conflicts": len(created), "carry_overs": carried}


def _notify_findings(added: list[int]) -> None:
    """One notification per department's managers and published change, for its new findings."""
    from django.urls import reverse

    from knowledge.models import Document

    from .models import NotificationKind
    from .notifications import department_managers, notification_send

    if not added:
        return
    event = f"{min(added)}-{max(added)}-{len(added)}"
    conflicts = Conflict.objects.filter(status=FindingStatus.OPEN).filter(Q(chunk_a_id__in=added) | Q(chunk_b_id__in=added))
    sides = set(conflicts.values_list("document_a_id", flat=True)) | set(conflicts.values_list("document_b_id", flat=True))
    stale = set(CarryOver.objects.filter(status=FindingStatus.OPEN, change_version__chunks__in=added).values_list("document_id", flat=True))
    for kind, document_ids, message, url in (
        (NotificationKind.CONFLICT, sides, _("New conflicting facts in your knowledge"), reverse("health:conflicts")),
        (NotificationKind.CARRY_OVER, stale, _("A change may not have been carried over to your documents"), reverse("health:carry_overs")),
    ):
        departments = set(Document.objects.filter(pk__in=document_ids).values_list("knowledge_base__department_id", flat=True))
        for users in department_managers(departments).values():
            for user in users:
                notification_send(user=user, kind=kind, event=f"{kind}:{event}", message=message, url=url)


def _carry_over_check(new: list[fact_lib.Fact], removed: list[int]) -> int:
    """For each document whose live version replaced another: the values it changed, and the other
    documents' passages that still state the old value about the same subject."""
    old_rows = Chunk.objects.filter(pk__in=removed).values_list(*_CHUNK_COLUMNS)
    old = _extract(old_rows)
    new_by_doc: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    new_version: dict[int, int] = {}
    for f in new:
        new_by_doc[f.document][f.key].add(f.value)
        new_version[f.document] = f.version
    rows = []
    for f in old:
        if f.document not in new_by_doc:
            continue
        new_values = new_by_doc[f.document].get(f.key)
        if not new_values or f.value in new_values:
            continue  # the subject is gone or the value stayed: nothing changed about it
        listed = CarryOver.objects.filter(status=FindingStatus.OPEN, key=f.key, old_value=f.value).values("chunk_id")
        stale = Fact.objects.filter(key=f.key, value=f.value).exclude(document_id=f.document).exclude(chunk_id__in=listed)
        for row in stale:  # (a passage already listed for this old value is not listed twice)
            rows.append(CarryOver(change_document_id=f.document, change_version_id=new_version[f.document],
                                  previous_version_id=f.version, chunk_id=row.chunk_id, document_id=row.document_id,
                                  key=f.key, kind=f.kind, unit=f.unit, subject=list(f.subject), old_value=f.value,
                                  new_value=sorted(new_values)[0], span=[row.start, row.end]))
    return len(CarryOver.objects.bulk_create(rows, ignore_conflicts=True))


def conflict_scan_full(*, progress=None) -> dict:
    """Re-read every searchable passage and list every conflict (the on-demand full scan). Pairs
    no longer found are resolved; dismissed ones stay dismissed."""
    report = progress or (lambda fraction, message: None)
    ids = list(Chunk.objects.filter(searchable=True).order_by("pk").values_list("pk", flat=True))
    everything: list[fact_lib.Fact] = []
    for start in range(0, len(ids), BATCH):
        everything.extend(_extract(Chunk.objects.filter(pk__in=ids[start:start + BATCH]).values_list(*_CHUNK_COLUMNS)))
        report(0.8 * min(start + BATCH, len(ids)) / max(len(ids), 1), f"{min(start + BATCH, len(ids))}/{len(ids)}")
    with transaction.atomic():
        searchable = set(Chunk.objects.filter(pk__in=ids, searchable=True).values_list("pk", flat=True))
        everything = [f for f in everything if f.chunk in searchable]  # a version went live meanwhile
        Fact.objects.all().delete()
        Fact.objects.bulk_create(_rows(everything), batch_size=BATCH)
        pairs = fact_lib.find_conflicts(everything)
        found = _conflict_rows(pairs, _open_carry_over_keys())
        Conflict.objects.bulk_create(found, ignore_conflicts=True, batch_size=BATCH)
        current = {(c.chunk_a_id, c.chunk_b_id, c.key) for c in found}
        stale = [pk for pk, a, b, key in Conflict.objects.filter(status=FindingStatus.OPEN).values_list("pk", "chunk_a_id", "chunk_b_id", "key")
                 if (a, b, key) not in current]
        Conflict.objects.filter(pk__in=stale).update(status=FindingStatus.RESOLVED, decided_at=timezone.now())
    report(1.0, "done")
    return {"passages": len(ids), "facts": len(everything), "conflicts": len(found), "resolved": len(stale)}


def conflict_scan_start(*, actor: Any):
    """Queue a full scan (a core Job with progress) for a knowledge manager."""
    from core.services import job_create

    if not health_departments(actor).exists():
        raise PermissionDenied
    return job_create(actor=actor, kind="health_conflict_scan", params={}, check_permission=False)


def _decide(*, policy, actor: Any, finding, reason: str, action: str, ip: str | None, audited: dict) -> None:
    """`audited`: per department whose reviewers read the decision, the details it may read."""
    if not policy.user_has_permission_for_instance(actor, "change", finding):
        raise PermissionDenied
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why this is not a conflict.")})
    if finding.status != FindingStatus.OPEN:
        raise ValidationError({"reason": _("This finding is no longer open.")})
    finding.status = FindingStatus.DISMISSED
    finding.reason = reason[:2000]
    finding.decided_by = actor
    finding.decided_at = timezone.now()
    finding.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    for department, details in audited.items():
        audit_log(actor=actor, action=action, obj=finding, department=department, ip=ip, reason=finding.reason, **details)


@transaction.atomic
def conflict_dismiss(*, actor: Any, conflict: Conflict, reason: str, ip: str | None = None) -> Conflict:
    """Audited once per side's department (whichever side dismissed), each naming its own side's document."""
    conflict = Conflict.objects.select_for_update().select_related(
        "document_a__knowledge_base__department", "document_b__knowledge_base__department").get(pk=conflict.pk)
    audited: dict = {}
    for document in (conflict.document_a, conflict.document_b):
        audited.setdefault(document.knowledge_base.department, {"documents": []})["documents"].append(document.pk)
    _decide(policy=conflict_policy, actor=actor, finding=conflict, reason=reason, action="health_conflict_dismiss",
            ip=ip, audited=audited)
    return conflict


@transaction.atomic
def carry_over_dismiss(*, actor: Any, carry_over: CarryOver, reason: str, ip: str | None = None) -> CarryOver:
    carry_over = CarryOver.objects.select_for_update().select_related("document__knowledge_base").get(pk=carry_over.pk)
    _decide(policy=carry_over_policy, actor=actor, finding=carry_over, reason=reason, action="health_carry_over_dismiss",
            ip=ip, audited={carry_over.document.knowledge_base.department: {"document": carry_over.document_id}})
    return carry_over


def on_searchable_chunks_changed(sender, *, added, removed, **kwargs) -> None:
    """The publish hook: queue the incremental check once the change commits (never breaks it)."""
    from core.services import job_create

    params = {"added": list(added), "removed": list(removed)}

    def enqueue() -> None:
        try:
            job_create(actor=None, kind="health_published_check", params=params, check_permission=False)
        except Exception:  # health must never break publishing; the full scan catches up
            logger.exception("Could not queue the knowledge health check")

    transaction.on_commit(enqueue)


# --- stale documents ------------------------------------------------------------------------------


def stale_documents(*, today=None, documents=None) -> dict[int, list[str]]:
    """Live documents that are stale today, with their reasons: past review-by, a source failing
    to sync for the knowledge base's number of days, an owner no longer an active member."""
    import datetime as dt

    from django.db.models import Exists, OuterRef, Q

    from accounts.models import Membership
    from knowledge.models import Document, DocumentState
    from sources.models import SourceRecord, SourceSync, SyncStatus

    from .models import KnowledgeBaseHealth, ReviewMark, StaleReason

    today = today or timezone.localdate()
    live = (documents if documents is not None else Document.objects.all()).exclude(state=DocumentState.ARCHIVED).filter(
        live_version__isnull=False)
    reasons: dict[int, list[str]] = defaultdict(list)
    for pk in live.filter(review_by__lt=today).values_list("pk", flat=True):
        reasons[pk].append(StaleReason.REVIEW_BY)
    member = Membership.objects.filter(user=OuterRef("owner"), department=OuterRef("knowledge_base__department"))
    gone = live.filter(Q(owner__isnull=True) | Q(owner__is_active=False) | ~Exists(member))
    for pk in gone.values_list("pk", flat=True):
        reasons[pk].append(StaleReason.OWNER_GONE)
    # Sources: failing since the first failed sync after the last good one.
    thresholds = dict(KnowledgeBaseHealth.objects.values_list("knowledge_base_id", "source_failure_days"))
    good = {SyncStatus.SUCCEEDED, SyncStatus.PARTIAL}
    failing_since: dict[int, tuple] = {}
    syncs = SourceSync.objects.filter(status__in=[*good, SyncStatus.FAILED], source__knowledge_base__in=live.values(
        "knowledge_base")).order_by("source_id", "queued_at").values_list("source_id", "source__knowledge_base_id", "status", "queued_at")
    for source_id, kb_id, status, queued_at in syncs:
        if status in good:
            failing_since.pop(source_id, None)
        else:
            failing_since.setdefault(source_id, (kb_id, queued_at))
    failing = [s for s, (kb, since) in failing_since.items()
               if timezone.localdate(since) <= today - dt.timedelta(days=thresholds.get(kb, 3))]
    for pk in SourceRecord.objects.filter(source_id__in=failing, document__in=live).values_list("document_id", flat=True):
        reasons[pk].append(StaleReason.SOURCE_FAILING)
    cleared = set(ReviewMark.objects.filter(document_id__in=list(reasons), valid_until__gte=today).values_list("document_id", flat=True))
    return {pk: r for pk, r in reasons.items() if pk not in cleared}


def stale_scan(*, today=None) -> dict:
    """The daily job: notify each stale document's knowledge managers, once per period."""
    from django.urls import reverse

    from knowledge.models import Document

    from .models import NotificationKind
    from .notifications import department_managers, notification_send

    today = today or timezone.localdate()
    stale = stale_documents(today=today)
    documents = Document.objects.filter(pk__in=list(stale)).select_related("knowledge_base")
    managers = department_managers({d.knowledge_base.department_id for d in documents})
    sent = 0
    for doc in documents:
        for user in managers.get(doc.knowledge_base.department_id, []):
            message = _("Needs review: %(title)s") % {"title": doc.title}
            if notification_send(user=user, kind=NotificationKind.STALE, event=f"stale:{doc.pk}", message=message,
                                 subject=doc.title, url=reverse("health:stale"), day=today):
                sent += 1
    return {"stale": len(stale), "notifications": sent}


@transaction.atomic
def document_mark_reviewed(*, actor: Any, document, note: str, ip: str | None = None):
    """Clears a stale document for one period; audited."""
    import datetime as dt

    from knowledge.policy import document_policy

    from .models import ReviewMark
    from .notifications import period_days

    if not document_policy.user_has_permission_for_instance(actor, "change", document):
        raise PermissionDenied
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say what you checked.")})
    mark = ReviewMark.objects.create(document=document, reviewed_by=actor, note=note[:2000],
                                     valid_until=timezone.localdate() + dt.timedelta(days=period_days()))
    audit_log(actor=actor, action="health_mark_reviewed", obj=document, department=document.knowledge_base.department,
              ip=ip, note=mark.note, valid_until=mark.valid_until)
    return mark


def notifications_mark_read(*, user: Any) -> int:
    from .models import Notification

    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def notification_preferences_set(*, user: Any, enabled_kinds: set[str]) -> None:
    from .models import NotificationKind, NotificationOptOut

    for kind in NotificationKind.values:
        if kind in enabled_kinds:
            NotificationOptOut.objects.filter(user=user, kind=kind).delete()
        else:
            NotificationOptOut.objects.get_or_create(user=user, kind=kind)


# --- gaps: questions the knowledge did not answer -------------------------------------------------


def gap_window_days() -> int:
    from django.conf import settings

    return int(getattr(settings, "HEALTH_GAP_WINDOW_DAYS", 90))


def _asked_against(messages) -> dict[int, list[int]]:
    """Per message, the knowledge bases its question searched: the assistant's (all when it lists
    none) within what the asker may read now (one readable_ids per asker, one query per assistant)."""
    from chat.models import Assistant
    from knowledge.policy import knowledge_base_policy

    readable: dict[int, set[int]] = {}
    assistant_kbs: dict[int, set[int]] = {}
    assistant_ids = {m.conversation.assistant_id for m in messages if m.conversation.assistant_id}
    for assistant in Assistant.objects.filter(pk__in=assistant_ids).prefetch_related("knowledge_bases"):
        assistant_kbs[assistant.pk] = {kb.pk for kb in assistant.knowledge_bases.all()}
    out = {}
    for m in messages:
        user = m.conversation.user
        if user.pk not in readable:
            readable[user.pk] = set(knowledge_base_policy.readable_ids(user))
        narrowed = assistant_kbs.get(m.conversation.assistant_id)
        out[m.pk] = sorted(readable[user.pk] & narrowed if narrowed else readable[user.pk])
    return out


def gap_scan(*, progress=None) -> dict:
    """Collect the questions of the window that got the no-knowledge outcome or a thumbs down and
    that are not collected yet, embed each once, and add them to the groups (health/gaps.py).

    After the embedding model changed, the window's questions grouped with the old model are
    embedded again and grouped anew with the new ones (one subject stays one group, not one per
    model); a group's draft goes with the first of its questions, and the old model's groups go."""
    import datetime as dt

    import numpy as np

    from chat.models import Feedback, Message, MessageStatus, Role
    from knowledge.embedding import configured_model_id

    from . import gaps
    from .models import GapGroup, GapQuestion, GapReason

    report = progress or (lambda fraction, message: None)
    since = timezone.now() - dt.timedelta(days=gap_window_days())
    collected = GapQuestion.objects.values("message_id")
    answers = Message.objects.filter(role=Role.ASSISTANT, created_at__gte=since).exclude(question="").exclude(pk__in=collected)
    negative = set(Feedback.objects.filter(rating=-1, message__in=answers).values_list("message_id", flat=True))
    messages = list(answers.filter(Q(status=MessageStatus.NO_KNOWLEDGE) | Q(pk__in=negative))
                    .select_related("conversation__user").order_by("created_at", "pk"))
    model = configured_model_id()
    stale = list(GapQuestion.objects.filter(asked_at__gte=since).exclude(group__model=model)
                 .select_related("group").defer("vector", "group__centroid").order_by("asked_at", "pk"))
    if not messages and not stale:
        report(1.0, "done")
        return {"questions": 0, "regrouped": 0, "groups": GapGroup.objects.count(), "notifications": 0}
    scopes = _asked_against(messages)
    total = len(stale) + len(messages)
    report(0.1, f"0/{total}")
    vectors = gaps.question_vectors(model, [q.question for q in stale] + [m.question for m in messages])
    report(0.8, f"{total}/{total}")
    with transaction.atomic():
        groups = list(GapGroup.objects.select_for_update().filter(model=model).order_by("pk"))
        centroids = [np.array(g.centroid, dtype=np.float64) for g in groups]
        sizes = [g.size for g in groups]
        indexes = gaps.assign(vectors, centroids, sizes)
        for index in range(len(groups), len(centroids)):
            groups.append(GapGroup(model=model))
        changed = set(indexes)  # only the groups that took a question are written
        for question, index in zip(stale, indexes, strict=False):
            old, new = question.group, groups[index]
            if old is not None and old.draft_document_id and not new.draft_document_id:
                new.draft_document_id, new.drafted_by_id, new.drafted_at = old.draft_document_id, old.drafted_by_id, old.drafted_at
        for index in sorted(changed):
            group = groups[index]
            group.centroid = [float(x) for x in centroids[index]]
            group.size = sizes[index]
            group.save()
        for question, vector, index in zip(stale, vectors, indexes, strict=False):
            question.vector, question.group = [float(x) for x in vector], groups[index]
        GapQuestion.objects.bulk_update(stale, ["vector", "group"], batch_size=500)
        # The old model's groups now hold only questions older than the window (never shown).
        GapGroup.objects.exclude(model=model).delete()
        GapQuestion.objects.bulk_create([
            GapQuestion(message=m, asker=m.conversation.user, question=m.question[:2000], asked_at=m.created_at,
                        reason=GapReason.NO_KNOWLEDGE if m.status == MessageStatus.NO_KNOWLEDGE else GapReason.NEGATIVE_FEEDBACK,
                        knowledge_bases=scopes[m.pk], vector=[float(x) for x in vector], group=groups[index])
            for m, vector, index in zip(messages, vectors[len(stale):], indexes[len(stale):], strict=True)
        ], ignore_conflicts=True)
        notified = _gap_notify([groups[index] for index in sorted(changed)], since)
    report(1.0, "done")
    return {"questions": len(messages), "regrouped": len(stale), "groups": len(groups), "notifications": notified}


def _gap_notify(groups, since) -> int:
    """Tell the managers who may see a group that took questions once it holds HEALTH_GAP_NOTIFY_MIN
    of the questions they may see (counted and exemplified for each of them alone); once per group
    and period."""
    from django.conf import settings
    from django.urls import reverse

    from knowledge.models import KnowledgeBase

    from .models import GapQuestion, NotificationKind
    from .notifications import department_managers, notification_send
    from .policy import gap_question_policy

    minimum = int(getattr(settings, "HEALTH_GAP_NOTIFY_MIN", 3))
    asked: dict[int, set[int]] = defaultdict(set)  # group → the knowledge bases its questions were asked against
    for group_id, kbs in GapQuestion.objects.filter(group__in=groups, asked_at__gte=since).values_list("group_id", "knowledge_bases"):
        asked[group_id].update(kbs)
    department_of = dict(KnowledgeBase.objects.filter(pk__in=set().union(*asked.values())).values_list("pk", "department_id"))
    managers = department_managers(set(department_of.values()))
    visible: dict[int, Any] = {}  # per manager, the questions they may see (the policy's query, built once)
    sent = 0
    for group in groups:
        recipients = {user.pk: user for kb in asked[group.pk] for user in managers.get(department_of.get(kb), [])}
        for user in recipients.values():
            if user.pk not in visible:
                visible[user.pk] = gap_question_policy.instances_user_has_permission_for(user, "view").filter(asked_at__gte=since)
            questions = list(visible[user.pk].filter(group=group).order_by("-asked_at", "-pk").values_list("question", flat=True))
            if len(questions) < minimum:
                continue
            example = questions[0].strip()[:200]
            message = _("%(count)s unanswered questions like “%(example)s”") % {"count": len(questions), "example": example}
            if notification_send(user=user, kind=NotificationKind.GAP, event=f"gap:{group.pk}", message=message,
                                 subject=example, url=reverse("health:gaps")):
                sent += 1
    return sent


def gap_scan_start(*, actor: Any = None):
    """Queue the gap scan as a core Job (the daily beat task and the page's button)."""
    from core.services import job_create

    if actor is not None and not health_departments(actor).exists():
        raise PermissionDenied
    return job_create(actor=actor, kind="health_gap_scan", params={}, check_permission=False)


@transaction.atomic
def gap_group_draft_create(*, actor: Any, group, knowledge_base, title: str, ip: str | None = None):
    """A new draft document, in a knowledge base the actor manages, listing the group's questions
    the actor may see; the group links to it. Created through knowledge.services (audited there)."""
    from knowledge.services import document_create

    from .models import GapGroup
    from .policy import gap_question_policy

    group = GapGroup.objects.select_for_update().get(pk=group.pk)
    questions = list(gap_question_policy.instances_user_has_permission_for(actor, "view").filter(group=group)
                     .order_by("asked_at", "pk").values_list("question", flat=True)[:50])
    if not questions:
        raise PermissionDenied
    title = (title or "").strip()[:300] or questions[0][:300]
    lines = [_("Questions employees asked that the knowledge did not answer:"), ""]
    lines += [f"- {q}" for q in dict.fromkeys(q.strip() for q in questions)]
    document = document_create(actor=actor, knowledge_base=knowledge_base, title=title, content="\n".join(lines) + "\n",
                               change_note=_("Drafted from unanswered questions"), ip=ip)
    group.draft_document = document
    group.drafted_by = actor
    group.drafted_at = timezone.now()
    group.save(update_fields=["draft_document", "drafted_by", "drafted_at"])
    audit_log(actor=actor, action="health_gap_draft", obj=document, department=knowledge_base.department, ip=ip,
              group=group.pk, questions=len(questions))
    return document


# --- per knowledge base settings ------------------------------------------------------------------


@transaction.atomic
def knowledge_base_health_update(*, actor: Any, knowledge_base, source_failure_days: Any, ip: str | None = None):
    """Set after how many days of failing syncs the knowledge base's source documents are stale;
    validated by knowledge/kb_settings.py, audited."""
    from knowledge.kb_settings import validate_source_failure_days
    from knowledge.policy import knowledge_base_policy

    from .models import KnowledgeBaseHealth

    if not knowledge_base_policy.user_has_permission_for_instance(actor, "change", knowledge_base):
        raise PermissionDenied
    days = validate_source_failure_days(source_failure_days)
    row, _created = KnowledgeBaseHealth.objects.select_for_update().get_or_create(knowledge_base=knowledge_base)
    before = row.source_failure_days if not _created else None
    if before != days:
        row.source_failure_days = days
        row.save(update_fields=["source_failure_days"])
        audit_log(actor=actor, action="health_settings_change", obj=knowledge_base, department=knowledge_base.department,
                  ip=ip, source_failure_days={"from": before, "to": days})
    return row
