"""Reads of sources, always with the acting user (hidden == missing == 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from knowledge.models import KnowledgeBase
from knowledge.policy import knowledge_base_policy

from .models import AllowedHost, Source, SourceSync
from .policy import allowed_host_policy, source_policy, source_sync_policy


def managed_knowledge_base_get(*, user: Any, pk: Any) -> KnowledgeBase:
    """The knowledge base whose sources the user manages; 404 for everyone else."""
    return knowledge_base_policy.instance_for_user(user, "change", pk)


def source_list(*, user: Any, knowledge_base: KnowledgeBase | None = None) -> QuerySet[Source]:
    sources = source_policy.instances_user_has_permission_for(user, "view").select_related(
        "knowledge_base", "last_sync", "created_by"
    )
    if knowledge_base is not None:
        sources = sources.filter(knowledge_base=knowledge_base)
    return sources.order_by("name", "id")


def source_get(*, user: Any, pk: Any) -> Source:
    return source_policy.instance_for_user(user, "view", pk)


def sync_list(*, user: Any, source: Source, limit: int = 50) -> QuerySet[SourceSync]:
    return source_sync_policy.instances_user_has_permission_for(user, "view").filter(source=source).select_related(
        "requested_by"
    )[:limit]


def allowed_host_list(*, user: Any) -> QuerySet[AllowedHost]:
    return allowed_host_policy.instances_user_has_permission_for(user, "view").order_by("host")
