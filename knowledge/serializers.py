from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.policy import department_policy
from accounts.serializers import PolicyRelatedField
from core.models import AuditEntry

from .ingestion.selectors import is_file_version, version_text
from .models import Document, DocumentState, DocumentVersion, KnowledgeBase, Review
from .policy import knowledge_base_policy, request_knowledge_access


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    department = PolicyRelatedField(policy=department_policy)
    department_code = serializers.CharField(source="department.code", read_only=True)
    shared_with = PolicyRelatedField(policy=department_policy, many=True, required=False)

    class Meta:
        model = KnowledgeBase
        fields = [
            "id", "name", "description", "department", "department_code", "shared_with", "shared_company_wide",
            "review_required", "self_approval_role", "chunk_settings", "retrieval_settings", "created_by", "created_at",
        ]
        read_only_fields = ["id", "created_by", "created_at"]


class KnowledgeBaseUpdateSerializer(KnowledgeBaseSerializer):
    department = serializers.PrimaryKeyRelatedField(read_only=True)  # declared: read_only_fields skips it

    class Meta(KnowledgeBaseSerializer.Meta):
        read_only_fields = ["id", "department", "created_by", "created_at"]


class VersionSummarySerializer(serializers.ModelSerializer):
    author_username = serializers.CharField(source="author.username", read_only=True)
    has_file = serializers.BooleanField(read_only=True)
    parent = serializers.SerializerMethodField()

    class Meta:
        model = DocumentVersion
        fields = [
            "id", "document", "number", "parent", "author", "author_username", "change_note", "content_sha256",
            "has_file", "file_name", "file_size", "file_mime", "file_sha256", "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_parent(self, version: DocumentVersion) -> int | None:
        # The parent may be a draft: only its editors and reviewers learn that it exists (fail closed
        # without a request).
        access = request_knowledge_access(self.context.get("request"))
        return version.parent_id if access.sees_drafts(version.document) else None


class VersionSerializer(VersionSummarySerializer):
    file_url = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField(
        help_text=_("The version's text: its content, or for a PDF/Word/Excel/HTML/CSV upload the text extracted "
                    "from the original file (empty until ingestion has read it).")
    )
    text_source = serializers.SerializerMethodField(
        help_text=_("“content” (what was written or uploaded as text) or “extracted” (read from the original file).")
    )

    class Meta(VersionSummarySerializer.Meta):
        fields = [*VersionSummarySerializer.Meta.fields, "content", "text", "text_source", "file_url"]
        read_only_fields = fields

    def get_text(self, version: DocumentVersion) -> str:
        return version_text(version)

    @extend_schema_field(serializers.ChoiceField(choices=["content", "extracted"]))
    def get_text_source(self, version: DocumentVersion) -> str:
        return "extracted" if is_file_version(version) else "content"

    @extend_schema_field(serializers.CharField(allow_null=True, help_text=_(
        "The original file's download path on this server; null for a version without a file.")))
    def get_file_url(self, version: DocumentVersion) -> str | None:
        if not version.original_file:
            return None
        return reverse("version-file", kwargs={"pk": version.pk})


class DocumentSerializer(serializers.ModelSerializer):
    """A document as the acting user (context["request"]) may know it: to a reader, and to anyone
    when no request is given, the state is "published" and the latest version is the live one."""

    owner_username = serializers.CharField(source="owner.username", read_only=True)
    knowledge_base_name = serializers.CharField(source="knowledge_base.name", read_only=True)
    state = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    live_version = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id", "knowledge_base", "knowledge_base_name", "title", "tags", "owner", "owner_username", "review_by",
            "state", "latest_version", "live_version", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def _access(self):
        return request_knowledge_access(self.context.get("request"))

    @extend_schema_field(serializers.ChoiceField(choices=DocumentState.choices, allow_null=True))
    def get_state(self, document: Document) -> str | None:
        return self._access().state(document)

    @extend_schema_field(VersionSummarySerializer(allow_null=True))
    def get_latest_version(self, document: Document):
        # Readers never see drafts: their latest version is the live one.
        return self._version_data(document, self._access().latest_version(document))

    @extend_schema_field(VersionSummarySerializer(allow_null=True))
    def get_live_version(self, document: Document):
        return self._version_data(document, document.live_version)

    def _version_data(self, document: Document, version: DocumentVersion | None):
        if version is None:
            return None
        version.document = document  # known already: no query per row for the parent rule
        return VersionSummarySerializer(version, context=self.context).data


@extend_schema_field(OpenApiTypes.INT)
class VisibleKnowledgeBaseField(serializers.PrimaryKeyRelatedField):
    """A knowledge base the acting user may edit; any other id reads as 'does not exist'."""

    def get_queryset(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return knowledge_base_policy.instances_user_has_permission_for(user, "change")


class DocumentCreateSerializer(serializers.Serializer):
    knowledge_base = VisibleKnowledgeBaseField()
    title = serializers.CharField(max_length=300)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    review_by = serializers.DateField(required=False, allow_null=True, default=None)
    change_note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DocumentUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    review_by = serializers.DateField(required=False, allow_null=True)


class VersionCreateSerializer(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    base_version = serializers.IntegerField(min_value=1, help_text=_("The version number the edit started from."))
    change_note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class VersionConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    base_version = serializers.IntegerField()
    latest = VersionSerializer()
    content = serializers.CharField(help_text=_("Your text, which was not saved."))


class StateErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class EditLockSerializer(serializers.Serializer):
    locked = serializers.BooleanField(help_text=_("Whether someone holds the document's edit lock (live or expired)."))
    owner = serializers.CharField(allow_null=True, help_text=_("Who holds it."))
    yours = serializers.BooleanField(help_text=_("Whether you hold it."))
    acquired_at = serializers.DateTimeField(allow_null=True)
    refreshed_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text=_("Unless refreshed (POST lock/ again) by then; an expired lock blocks no one."))
    expired = serializers.BooleanField()


class RollbackSerializer(serializers.Serializer):
    to_number = serializers.IntegerField(min_value=1, help_text=_("The version whose content is restored."))


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=1000,
        help_text=_("Why (audited). Required to archive a published document."),
    )

    def validate(self, attrs):
        # An action's body holds its reason and nothing else: a stray field is a mistake, not a no-op.
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: _("Unknown field.") for name in unknown})
        return attrs


class DiffSerializer(serializers.Serializer):
    document = serializers.IntegerField()
    from_version = VersionSummarySerializer()
    to_version = VersionSummarySerializer()
    diff = serializers.JSONField(
        help_text=_("Line and word-level differences, as knowledge.diff.diff_texts returns them.")
    )


class ReviewSerializer(serializers.ModelSerializer):
    document_title = serializers.CharField(source="document.title", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    requested_by_username = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by_username = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Review
        fields = [
            "id", "document", "document_title", "version", "version_number", "state", "requested_by",
            "requested_by_username", "decided_by", "decided_by_username", "comment", "created_at", "decided_at",
        ]
        read_only_fields = fields


class ReviewApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReviewRequestChangesSerializer(serializers.Serializer):
    comment = serializers.CharField()


class AuditEntrySerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()
    version_number = serializers.IntegerField(source="version.number", read_only=True, allow_null=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id", "created_at", "actor", "actor_username", "action", "object_type", "object_id", "object_repr",
            "department", "version", "version_number", "ip", "details",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_object_type(self, entry: AuditEntry) -> str:
        if entry.content_type_id is None:
            return ""
        return f"{entry.content_type.app_label}.{entry.content_type.model}"


class DocumentFilterSerializer(serializers.Serializer):
    knowledge_base = serializers.IntegerField(required=False)
    q = serializers.CharField(required=False, allow_blank=True, default="")
    tag = serializers.CharField(required=False, allow_blank=True, default="")
    state = serializers.ChoiceField(choices=DocumentState.choices, required=False, allow_blank=True, default="")
    ordering = serializers.CharField(required=False, default="-updated_at")


class AuditFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    author = serializers.CharField(required=False)
    department = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
