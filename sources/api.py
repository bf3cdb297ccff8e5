"""The sources API: sources (credentials write-only), sync requests and history, the allowlist.
Querysets come from the policies; a source of a knowledge base you do not manage is a 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.viewsets import PolicyModelViewSet, drf_validation_error
from core.audit import client_ip
from knowledge.policy import knowledge_base_policy

from . import selectors, services
from .policy import allowed_host_policy, source_policy
from .serializers import (
    AllowedHostSerializer,
    SourceFilterSerializer,
    SourceSerializer,
    SourceSyncSerializer,
    SourceUpdateSerializer,
)


@extend_schema_view(
    list=extend_schema(parameters=[
        OpenApiParameter("knowledge_base", int, description="Only sources of this knowledge base."),
        OpenApiParameter("kind", str, enum=["sql", "http"]),
    ]),
)
class SourceViewSet(PolicyModelViewSet):
    """SQL and HTTP sources of the knowledge bases you manage."""

    policy = source_policy
    serializer_class = SourceSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    policy_actions = {"sync": "sync", "syncs": "view", "run_as_me": "change"}
    actions_without_body = frozenset({"sync", "run_as_me"})

    def refine_queryset(self, queryset):
        queryset = queryset.select_related("knowledge_base", "created_by", "last_sync__requested_by").order_by("name", "id")
        if self.action == "list":
            filters = SourceFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if kb := filters.validated_data.get("knowledge_base"):
                queryset = queryset.filter(knowledge_base_id=kb)
            if kind := filters.validated_data.get("kind"):
                queryset = queryset.filter(kind=kind)
        return queryset

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        knowledge_base = data.pop("knowledge_base")
        if not knowledge_base_policy.user_has_permission_for_instance(request.user, "change", knowledge_base):
            raise ValidationError({"knowledge_base": ["You do not manage this knowledge base."]})
        try:
            source = services.source_create(
                actor=request.user, knowledge_base=knowledge_base, kind=data.pop("kind"), ip=client_ip(request), **data
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SourceUpdateSerializer, responses=SourceSerializer)
    def partial_update(self, request, *args, **kwargs):
        source = self.get_object()
        serializer = SourceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            source = services.source_update(
                actor=request.user, source=source, ip=client_ip(request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        return Response(SourceSerializer(source).data)

    def perform_destroy(self, instance):
        services.source_delete(actor=self.request.user, source=instance, ip=client_ip(self.request))

    @extend_schema(summary="Queue a sync of this source now", request=None, responses={202: SourceSyncSerializer})
    @action(detail=True, methods=["post"], url_path="sync", url_name="sync")
    def sync(self, request, pk=None):
        source = self.get_object()
        sync = services.source_sync_request(actor=request.user, source=source)
        return Response(SourceSyncSerializer(sync).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Run this source's syncs as me (a source whose creator left)", request=None,
                   responses=SourceSerializer)
    @action(detail=True, methods=["post"], url_path="run-as-me", url_name="run-as-me")
    def run_as_me(self, request, pk=None):
        source = services.source_run_as(actor=request.user, source=self.get_object(), ip=client_ip(request))
        return Response(SourceSerializer(source).data)

    @extend_schema(summary="The sync history of this source", responses=SourceSyncSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="syncs", url_name="syncs")
    def syncs(self, request, pk=None):
        source = self.get_object()
        return Response(SourceSyncSerializer(selectors.sync_list(user=request.user, source=source), many=True).data)


class AllowedHostViewSet(PolicyModelViewSet):
    """The hosts HTTP sources may call; company admins only."""

    policy = allowed_host_policy
    serializer_class = AllowedHostSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.order_by("host")

    def perform_create(self, serializer):
        try:
            serializer.instance = services.allowed_host_create(
                actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc

    def perform_destroy(self, instance):
        services.allowed_host_delete(actor=self.request.user, entry=instance, ip=client_ip(self.request))
