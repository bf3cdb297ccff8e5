"""REST API for assistants and model endpoints (the pages' twins). Querysets come from the
policies; API keys are write-only and stored encrypted."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.viewsets import PolicyModelViewSet
from knowledge.models import KnowledgeBase
from knowledge.policy import knowledge_base_policy

from . import services
from .models import Assistant, ModelEndpoint
from .policy import assistant_policy, endpoint_policy


class AssistantSerializer(serializers.ModelSerializer):
    knowledge_bases = serializers.PrimaryKeyRelatedField(many=True, queryset=KnowledgeBase.objects.all(), required=False)

    class Meta:
        model = Assistant
        fields = ["id", "name", "description", "system_prompt", "knowledge_bases", "departments", "endpoint",
                  "retrieval_settings", "is_default", "active"]
        read_only_fields = ["is_default"]

    def validate_knowledge_bases(self, value):
        readable = set(knowledge_base_policy.readable_ids(self.context["request"].user))
        if any(kb.pk not in readable for kb in value):
            raise serializers.ValidationError("Only knowledge bases you may read can be attached.")
        return value

    def validate_retrieval_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("An object is expected.")
        if "min_score" in value:
            # One relevance cut: search()'s calibrated no-answer cut decides (README "Chat").
            raise serializers.ValidationError(
                "min_score is not an assistant setting: the search's calibrated no-answer cut decides "
                "when there is no relevant knowledge.")
        if "k" in value and not (isinstance(value["k"], int) and 1 <= value["k"] <= 20):
            raise serializers.ValidationError("k is an integer in [1, 20].")
        return value


class AssistantViewSet(PolicyModelViewSet):
    """Assistants: everyone lists the ones they may use; admins and knowledge managers configure."""

    policy = assistant_policy
    serializer_class = AssistantSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.prefetch_related("knowledge_bases", "departments").order_by("-is_default", "name")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.assistant_save(
            actor=self.request.user, knowledge_bases=data.pop("knowledge_bases", []),
            departments=data.pop("departments", []), **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.assistant_save(
            actor=self.request.user, assistant=serializer.instance, knowledge_bases=data.pop("knowledge_bases", None),
            departments=data.pop("departments", None), **data)

    def destroy(self, request, *args, **kwargs):
        assistant = self.get_object()
        if assistant.is_default:
            return Response({"detail": "The default assistant cannot be deleted."}, status=status.HTTP_400_BAD_REQUEST)
        services.assistant_delete(actor=request.user, assistant=assistant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(write_only=True, required=False, allow_blank=True)
    has_api_key = serializers.BooleanField(read_only=True)

    class Meta:
        model = ModelEndpoint
        fields = ["id", "name", "kind", "base_url", "model", "tokenizer_path", "context_window", "max_tokens",
                  "temperature", "connect_timeout_s", "read_timeout_s", "enabled", "api_key", "has_api_key",
                  "from_environment"]
        read_only_fields = ["from_environment"]

    def validate(self, data):
        kind = data.get("kind", getattr(self.instance, "kind", "openai"))
        base_url = data.get("base_url", getattr(self.instance, "base_url", ""))
        if kind == "openai" and not str(base_url).startswith(("http://", "https://")):
            raise serializers.ValidationError({"base_url": "Enter the server's base URL, e.g. http://127.0.0.1:8001/v1"})
        return data


class EndpointViewSet(PolicyModelViewSet):
    """Model endpoints (company admins). The API key is write-only."""

    policy = endpoint_policy
    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.order_by("name")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.endpoint_save(actor=self.request.user, api_key=data.pop("api_key", None), **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.endpoint_save(actor=self.request.user, endpoint=serializer.instance,
                                                     api_key=data.pop("api_key", None), **data)

    def perform_destroy(self, instance):
        services.endpoint_delete(actor=self.request.user, endpoint=instance)
