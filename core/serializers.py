from rest_framework import serializers

from .models import Job


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id", "kind", "queue", "status", "progress", "message", "error", "params", "result",
            "created_at", "started_at", "finished_at", "attempts",
        ]
        read_only_fields = fields


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["system_check"])
    params = serializers.DictField(required=False)
