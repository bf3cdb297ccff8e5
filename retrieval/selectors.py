"""Reads for the hit-testing pages: every one takes the acting user."""

from __future__ import annotations

from django.http import Http404

from knowledge.models import Document, KnowledgeBase
from knowledge.policy import document_policy
from knowledge.selectors import managed_knowledge_bases

from .models import HitTestRun, HitTestSet


def managed_knowledge_base_get(*, user, pk: int) -> KnowledgeBase:
    kb = managed_knowledge_bases(user=user).filter(pk=pk).first()
    if kb is None:
        raise Http404
    return kb


def hit_test_set_list(*, user, knowledge_base=None):
    sets = HitTestSet.objects.filter(knowledge_base__in=managed_knowledge_bases(user=user))
    if knowledge_base is not None:
        sets = sets.filter(knowledge_base=knowledge_base)
    return sets.select_related("knowledge_base")


def hit_test_set_get(*, user, pk: int) -> HitTestSet:
    found = hit_test_set_list(user=user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def hit_test_run_history(*, user, test_set: HitTestSet):
    return HitTestRun.objects.filter(test_set__in=hit_test_set_list(user=user), test_set=test_set).order_by(
        "created_at", "id"
    )


def expected_document_choices(*, user, knowledge_base) -> list[Document]:
    return list(
        document_policy.instances_user_has_permission_for(user, "view")
        .filter(knowledge_base=knowledge_base)
        .order_by("title")
    )
