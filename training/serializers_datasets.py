from __future__ import annotations

from rest_framework import serializers

from .forms_datasets import FORMAT_CHOICES
from .models import Dataset, DatasetRow, DatasetVersion


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "number", "parent", "origin", "content_sha256", "row_count", "report", "note",
                  "created_by", "created_at"]
        read_only_fields = fields


class DatasetSerializer(serializers.ModelSerializer):
    latest_version = DatasetVersionSerializer(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "department", "latest_version", "created_at", "updated_at"]
        read_only_fields = fields


class DatasetRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetRow
        fields = ["index", "messages", "rejected", "augmented", "method", "source_version_ids", "meta", "content_sha256"]
        read_only_fields = fields


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    department = serializers.IntegerField()
    description = serializers.CharField(required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=[c for c, _label in FORMAT_CHOICES], default="auto")
    file = serializers.FileField()


class VersionUploadSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[c for c, _label in FORMAT_CHOICES], default="auto")
    file = serializers.FileField()


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField()
    reason = serializers.CharField()


class UploadErrorsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = RowErrorSerializer(many=True)
    truncated = serializers.BooleanField()


class CleaningSerializer(serializers.Serializer):
    exact_duplicates = serializers.BooleanField(default=True)
    near_duplicates = serializers.BooleanField(default=True)
    near_threshold = serializers.FloatField(min_value=0.3, max_value=1.0, default=0.8)
    min_answer_tokens = serializers.IntegerField(min_value=0, default=0)
    max_tokens = serializers.IntegerField(min_value=0, default=0)
    mask_pii = serializers.BooleanField(default=False)


class AugmentSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["synonym", "paraphrase", "back_translation"])
    copies = serializers.IntegerField(min_value=1, max_value=5, default=1)
    seed = serializers.IntegerField(min_value=0, default=0)


class KnowledgeDatasetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    department = serializers.IntegerField()
    knowledge_bases = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    since = serializers.DateTimeField(required=False, allow_null=True, default=None)
    use_model = serializers.BooleanField(default=True)


class DistillationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    department = serializers.IntegerField()
    teacher = serializers.IntegerField(help_text="Id of an enabled OpenAI-compatible model endpoint (chat's model endpoints).")
    prompts = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, default=list)
    prompts_from_version = serializers.IntegerField(
        required=False, allow_null=True, default=None,
        help_text="A dataset version id: its rows' last user turns are added to the prompts (e.g. QA pairs from the knowledge base).")
    system_prompt = serializers.CharField(required=False, allow_blank=True, default="")
    max_tokens = serializers.IntegerField(min_value=1, max_value=32768, default=512)


class PreviewTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    loss = serializers.BooleanField()
    truncated = serializers.BooleanField()


class RowPreviewSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    text = serializers.CharField()
    tokens = PreviewTokenSerializer(many=True)
    loss_tokens = serializers.IntegerField()
    end_of_turn_in_loss = serializers.BooleanField()
    truncated = serializers.BooleanField()
