"""REST API for assistants and model endpoints (the pages' twins). Querysets come from the
policies; API keys are write-only and stored encrypted."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.policy import department_policy
from accounts.serializers import PolicyRelatedField
from accounts.viewsets import PolicyModelViewSet, drf_validation_error
from knowledge.policy import knowledge_base_policy
from llm.extractive import DEFAULTS as EXTRACTIVE_DEFAULTS

from . import services
from .forms import SEARCH_MODES
from .models import Assistant, ModelEndpoint
from .pipeline import DEFAULT_SETTINGS
from .policy import assistant_policy, endpoint_policy


# What someone who may only use an assistant sees of it.
USE_FIELDS = ("id", "name", "description", "is_default", "active")
# retrieval_settings keys with a number: (smallest, largest, integer only).
NUMERIC_SETTINGS = {"k": (1, 20, True), "max_tokens": (1, 32768, True), "unsupported_below": (0, 1, False),
                    "add_marker_above": (0, 1, False), "add_marker_margin": (0, 1, False)}


def _is_number(value, integer: bool) -> bool:
    return isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)


@extend_schema_field(OpenApiTypes.INT)
class AssistantEndpointField(serializers.PrimaryKeyRelatedField):
    """An endpoint the acting user may give this assistant; any other id "does not exist"."""

    def get_queryset(self):
        current = self.parent.instance.endpoint_id if isinstance(self.parent.instance, Assistant) else None
        return endpoint_policy.choices_for_assistant(self.context["request"].user, current)


class AssistantSerializer(serializers.ModelSerializer):
    knowledge_bases = PolicyRelatedField(policy=knowledge_base_policy, many=True, required=False)
    departments = PolicyRelatedField(policy=department_policy, many=True, required=False)
    endpoint = AssistantEndpointField(required=False, allow_null=True)

    class Meta:
        model = Assistant
        fields = ["id", "name", "description", "system_prompt", "knowledge_bases", "departments", "endpoint",
                  "retrieval_settings", "is_default", "active"]
        read_only_fields = ["is_default"]

    def _viewer(self) -> tuple[set[int], set[int]]:
        """(ids of the assistants the user configures, ids of the knowledge bases they read), once
        per request and after the write (a created assistant is one of the first)."""
        if "viewer" not in self.context:
            user = self.context["request"].user
            self.context["viewer"] = (
                set(assistant_policy.instances_user_has_permission_for(user, "change").values_list("pk", flat=True)),
                set(knowledge_base_policy.readable_ids(user)))
        return self.context["viewer"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        configured, readable = self._viewer()
        if instance.pk not in configured:
            return {key: data[key] for key in USE_FIELDS}
        data["knowledge_bases"] = [pk for pk in data["knowledge_bases"] if pk in readable]
        return data

    def validate_retrieval_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("An object is expected.")
        if "min_score" in value:
            # One relevance cut: search()'s calibrated no-answer cut decides (README "Chat").
            raise serializers.ValidationError(
                "min_score is not an assistant setting: the search's calibrated no-answer cut decides "
                "when there is no relevant knowledge.")
        unknown = sorted(set(value) - set(DEFAULT_SETTINGS))
        if unknown:
            raise serializers.ValidationError(f"Unknown settings: {', '.join(unknown)}.")
        for key, (low, high, integer) in NUMERIC_SETTINGS.items():
            if key in value and not (_is_number(value[key], integer) and low <= value[key] <= high):
                raise serializers.ValidationError(f"{key} is {'an integer' if integer else 'a number'} in [{low}, {high}].")
        if "mode" in value and value["mode"] not in dict(SEARCH_MODES):
            raise serializers.ValidationError(f"mode is one of {', '.join(dict(SEARCH_MODES))}.")
        extractive = value.get("extractive", {})
        if not isinstance(extractive, dict) or any(
                key not in EXTRACTIVE_DEFAULTS or not _is_number(number, False) or not 0 <= number <= 100
                for key, number in extractive.items()):
            raise serializers.ValidationError(
                f"extractive is an object of numbers in [0, 100] named {', '.join(EXTRACTIVE_DEFAULTS)}.")
        return value


class AssistantViewSet(PolicyModelViewSet):
    """Assistants: everyone lists the ones they may use (name and description); their configurers
    (chat/policy.py) see and change the configuration."""

    policy = assistant_policy
    serializer_class = AssistantSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.prefetch_related("knowledge_bases", "departments").order_by("-is_default", "name")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = services.assistant_save(
                actor=self.request.user, knowledge_bases=data.pop("knowledge_bases", []),
                departments=data.pop("departments", []), **data)
        except DjangoValidationError as refusal:
            raise drf_validation_error(refusal) from None

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = services.assistant_save(
                actor=self.request.user, assistant=serializer.instance,
                knowledge_bases=data.pop("knowledge_bases", None), departments=data.pop("departments", None), **data)
        except DjangoValidationError as refusal:
            raise drf_validation_error(refusal) from None

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
