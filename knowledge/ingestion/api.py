"""Uploads through the API: multipart files into a knowledge base (each file a new document, a
.zip unpacked) or as a new version of a document. The same service as the upload page
(`uploads.upload_files`), so the same outcomes, limits and messages. A knowledge base or document
the user may not read answers 404 exactly like a missing one; one they may read but not edit, 403."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.viewsets import PolicyViewSetMixin
from core.audit import client_ip

from ..policy import document_policy, knowledge_base_policy
from . import uploads


class KnowledgeBaseUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text=_("One or more files (the field repeated): PDF, DOCX, XLSX, CSV, HTML, Markdown, text, or a .zip."),
    )
    change_note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=_("The file whose content becomes the document's new version (not a .zip)."))
    change_note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class UploadOutcomeSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["created", "new_version", "unchanged", "refused", "skipped"],
        help_text=_("created: a new document; new_version: a version of the document; unchanged: the same content "
                    "is already the latest version; refused: not stored (message says why); skipped: an entry of a "
                    ".zip that was not stored (message says why)."),
    )
    document = serializers.IntegerField(source="document.pk", allow_null=True, default=None)
    version = serializers.IntegerField(source="version.pk", allow_null=True, default=None)
    version_number = serializers.IntegerField(source="version.number", allow_null=True, default=None)
    message = serializers.CharField(allow_blank=True)


class UploadResultSerializer(serializers.Serializer):
    outcomes = UploadOutcomeSerializer(many=True)


UPLOAD_RESPONSES = {
    201: OpenApiResponse(UploadResultSerializer, description="At least one file was stored as a version."),
    200: OpenApiResponse(UploadResultSerializer, description="Nothing new: every file was unchanged or skipped."),
    400: OpenApiResponse(UploadResultSerializer, description="Every file was refused (each outcome says why), or "
                                                             "the request itself is invalid."),
}


def _answer(outcomes) -> Response:
    stored = any(outcome.status in ("created", "new_version") for outcome in outcomes)
    refused = all(outcome.status == "refused" for outcome in outcomes)
    code = status.HTTP_201_CREATED if stored else status.HTTP_400_BAD_REQUEST if refused else status.HTTP_200_OK
    return Response(UploadResultSerializer({"outcomes": outcomes}).data, status=code)


def _upload(request, *, knowledge_base, files, document=None, change_note=""):
    try:
        return uploads.upload_files(
            actor=request.user, knowledge_base=knowledge_base, files=files, document=document,
            change_note=change_note, ip=client_ip(request),
        )
    except DjangoValidationError as exc:
        raise ValidationError({"detail": exc.messages}) from exc


class KnowledgeBaseUploadViewSet(PolicyViewSetMixin, viewsets.GenericViewSet):
    policy = knowledge_base_policy
    policy_actions = {"uploads": "change"}
    serializer_class = KnowledgeBaseUploadSerializer

    @extend_schema(
        summary="Upload files into a knowledge base (each a new draft document; a .zip is unpacked)",
        request={"multipart/form-data": KnowledgeBaseUploadSerializer},
        responses=UPLOAD_RESPONSES,
    )
    @action(detail=True, methods=["post"], url_path="uploads", url_name="uploads")
    def uploads(self, request, pk=None):
        knowledge_base = self.get_object()
        serializer = KnowledgeBaseUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcomes = _upload(
            request, knowledge_base=knowledge_base, files=serializer.validated_data["files"],
            change_note=serializer.validated_data["change_note"],
        )
        return _answer(outcomes)


class DocumentUploadViewSet(PolicyViewSetMixin, viewsets.GenericViewSet):
    policy = document_policy
    policy_actions = {"uploads": "change"}
    serializer_class = DocumentUploadSerializer

    def refine_queryset(self, queryset):
        return queryset.select_related("knowledge_base")

    @extend_schema(
        summary="Upload a file as the document's new version",
        request={"multipart/form-data": DocumentUploadSerializer},
        responses=UPLOAD_RESPONSES,
    )
    @action(detail=True, methods=["post"], url_path="uploads", url_name="uploads")
    def uploads(self, request, pk=None):
        document = self.get_object()
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcomes = _upload(
            request, knowledge_base=document.knowledge_base, files=[serializer.validated_data["file"]],
            document=document, change_note=serializer.validated_data["change_note"],
        )
        return _answer(outcomes)
