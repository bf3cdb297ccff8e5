"""REST for a knowledge base's health settings: the same service as the "Health settings" page,
as the requesting user (its editors only)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.audit import client_ip

from . import services


class KnowledgeBaseHealthSerializer(serializers.Serializer):
    knowledge_base = serializers.IntegerField(read_only=True)
    source_failure_days = serializers.JSONField(
        help_text="After how many days of failing syncs the knowledge base's source documents are stale (1 to 365).")


def _settings(knowledge_base) -> dict:
    from .models import KnowledgeBaseHealth

    row = KnowledgeBaseHealth.objects.filter(knowledge_base=knowledge_base).first()
    days = row.source_failure_days if row else KnowledgeBaseHealth._meta.get_field("source_failure_days").default
    return {"knowledge_base": knowledge_base.pk, "source_failure_days": days}


class KnowledgeBaseHealthView(APIView):
    def _knowledge_base(self, request, pk):
        from knowledge.policy import knowledge_base_policy

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
            raise ValidationError(exc.message_dict) from exc
        return Response(_settings(knowledge_base))

    @extend_schema(request=KnowledgeBaseHealthSerializer, responses=KnowledgeBaseHealthSerializer,
                   operation_id="health_knowledge_base_settings_partial_update")
    def patch(self, request, pk):
        return self.put(request, pk)
