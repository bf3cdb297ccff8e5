from __future__ import annotations

from rest_framework import serializers

from knowledge.policy import knowledge_base_policy

from .models import AllowedHost, Source, SourceKind, SourceSync

COMMON = ["name", "enabled", "schedule_minutes", "key_field", "title_template", "body_template",
          "query", "url", "records_path", "auth_header_name", "timeout_seconds", "max_records"]


class SourceSyncSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SourceSync
        fields = ["id", "source", "status", "trigger", "requested_by", "fetched", "created", "updated",
                  "unchanged", "failed", "error", "record_errors", "queued_at", "started_at", "finished_at"]
        read_only_fields = fields


class ManagedKnowledgeBaseField(serializers.PrimaryKeyRelatedField):
    """A knowledge base the acting user manages; any other id, hidden or missing, gets the same
    "does not exist" answer (an existence leak is a leak)."""

    def get_queryset(self):
        user = getattr(self.context.get("request"), "user", None)
        return knowledge_base_policy.instances_user_has_permission_for(user, "change")


class SourceSerializer(serializers.ModelSerializer):
    """Credentials are write-only: `dsn` and `auth_header_value` are accepted, never returned;
    `dsn_hint` and `has_auth_header` say what is stored."""

    knowledge_base = ManagedKnowledgeBaseField()

    dsn = serializers.CharField(write_only=True, required=False, allow_blank=True, style={"input_type": "password"})
    auth_header_value = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    has_auth_header = serializers.BooleanField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    last_sync = SourceSyncSerializer(read_only=True)

    class Meta:
        model = Source
        fields = ["id", "knowledge_base", "kind", *COMMON, "dsn", "dsn_hint", "auth_header_value",
                  "has_auth_header", "created_by", "created_at", "updated_at", "next_sync_at", "last_sync"]
        read_only_fields = ["dsn_hint", "created_at", "updated_at", "next_sync_at"]


class SourceUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    enabled = serializers.BooleanField(required=False)
    schedule_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=5, max_value=60 * 24 * 31)
    key_field = serializers.CharField(required=False, max_length=200)
    title_template = serializers.CharField(required=False, max_length=500)
    body_template = serializers.CharField(required=False)
    query = serializers.CharField(required=False, allow_blank=True)
    url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    records_path = serializers.CharField(required=False, allow_blank=True, max_length=300)
    auth_header_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    timeout_seconds = serializers.IntegerField(required=False, min_value=1, max_value=600)
    max_records = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
    dsn = serializers.CharField(required=False, allow_blank=True, write_only=True)
    auth_header_value = serializers.CharField(required=False, allow_blank=True, write_only=True)
    clear_auth_header = serializers.BooleanField(required=False, write_only=True)


class SourceFilterSerializer(serializers.Serializer):
    knowledge_base = serializers.IntegerField(required=False)
    kind = serializers.ChoiceField(choices=SourceKind.choices, required=False)


class AllowedHostSerializer(serializers.ModelSerializer):
    class Meta:
        model = AllowedHost
        fields = ["id", "source_kind", "host", "port", "allow_private_addresses", "note", "created_at"]
        read_only_fields = ["created_at"]
