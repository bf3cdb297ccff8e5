"""REST for a knowledge base's health settings: the same service as the "Health settings" page,
as the requesting user (its editors only)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.viewsets import drf_validation_error
from core.audit import client_ip
from knowledge.policy import knowledge_base_policy

from . import selectors, services


class KnowledgeBaseHealthSerializer(serializers.Serializer):
    knowledge_base = serializers.IntegerField(read_only=True)
    source_failure_days = serializers.JSONField(
        help_text="After how many days of failing syncs the knowledge base's source documents are stale (1 to 365).")


def _settings(knowledge_base) -> dict:
    return {"knowledge_base": knowledge_base.pk,
            "source_failure_days": selectors.source_failure_days(knowledge_base=knowledge_base)}


class KnowledgeBaseHealthView(APIView):
    def _knowledge_base(self, request, pk):
        return knowledge_base_policy.instance_for_user(request.user, "change", pk)

    @extend_schema(responses=KnowledgeBaseHealthSerializer, operation_id="health_knowledge_base_settings_get")
    def get(self, request, pk):
        return Response(_settings(self._knowledge_base(request, pk)))

    @extend_schema(request=KnowledgeBaseHealthSerializer, responses=KnowledgeBaseHealthSerializer,
                   operation_id="health_knowledge_base_settings_update")
    def put(self, request, pk):
        data = request.data  # the body is read first: a malformed one is a 400 whatever the id
        knowledge_base = self._knowledge_base(request, pk)
        if not isinstance(data, dict) or "source_failure_days" not in data:
            raise ValidationError({"source_failure_days": ["This field is required."]})
        try:
            services.knowledge_base_health_update(actor=request.user, knowledge_base=knowledge_base, ip=client_ip(request),
                                                  source_failure_days=data["source_failure_days"])
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        return Response(_settings(knowledge_base))

    @extend_schema(request=KnowledgeBaseHealthSerializer, responses=KnowledgeBaseHealthSerializer,
                   operation_id="health_knowledge_base_settings_partial_update")
    def patch(self, request, pk):
        return self.put(request, pk)
