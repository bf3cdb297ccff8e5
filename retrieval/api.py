"""REST search: the same `search` as chat and the hit-testing page, as the requesting user."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .search import MODES, search


class SearchRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=1000)
    knowledge_bases = serializers.ListField(child=serializers.IntegerField(), required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    updated_after = serializers.DateTimeField(required=False)
    updated_before = serializers.DateTimeField(required=False)
    k = serializers.IntegerField(min_value=1, max_value=50, default=10)
    mode = serializers.ChoiceField(choices=MODES, default="hybrid")


class RetrieverScoreSerializer(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True)
    score = serializers.FloatField(allow_null=True)


class SearchHitSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    fused_score = serializers.FloatField(allow_null=True)
    chunk_id = serializers.IntegerField(source="chunk.pk")
    text = serializers.CharField(source="chunk.text")
    heading_path = serializers.ListField(child=serializers.CharField(), source="chunk.heading_path")
    knowledge_base_id = serializers.IntegerField(source="chunk.knowledge_base_id")
    document_id = serializers.IntegerField(source="chunk.document_id")
    document_title = serializers.CharField(source="chunk.document.title")
    version_id = serializers.IntegerField(source="chunk.version_id")
    version_number = serializers.IntegerField(source="chunk.version.number")
    retrievers = serializers.DictField(child=RetrieverScoreSerializer())


class SearchResponseSerializer(serializers.Serializer):
    mode = serializers.CharField()
    no_answer = serializers.BooleanField(help_text="The no-answer cut: the best hit's relevance is under the threshold.")
    relevance = serializers.FloatField(allow_null=True, help_text="The best hit's relevance (null: nothing matched).")
    threshold = serializers.FloatField(allow_null=True, help_text="The no-answer threshold it was compared with.")
    dense_error = serializers.CharField(allow_null=True, help_text="Why the dense retriever did not run, else null.")
    results = SearchHitSerializer(many=True)


class SearchView(APIView):
    @extend_schema(request=SearchRequestSerializer, responses=SearchResponseSerializer, operation_id="search")
    def post(self, request):
        params = SearchRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        filters = {key: data[key] for key in ("tags", "updated_after", "updated_before") if data.get(key)}
        results = search(
            request.user, data["query"], knowledge_bases=data.get("knowledge_bases"), filters=filters,
            k=data["k"], mode=data["mode"],
        )
        body = {"mode": results.mode, "no_answer": results.no_answer, "relevance": results.relevance,
                "threshold": results.threshold, "dense_error": results.dense_error, "results": list(results)}
        return Response(SearchResponseSerializer(body).data)
