"""The datasets API: list/upload datasets, versions (read-only), their rows, cleaning,
augmentation, knowledge-base generation and the token preview. Querysets come from the policies;
writes go through services_datasets; a hidden object is a 404 exactly like a missing one."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.models import Department
from accounts.viewsets import PolicyModelViewSet, PolicyReadOnlyViewSet
from core.audit import client_ip
from core.serializers import JobSerializer

from . import selectors_datasets as selectors
from . import services_datasets as services
from .datasets.cleaning import CleaningOptions
from .datasets.tokenizer import TokenizerUnavailable, load_tokenizer
from .policy import dataset_policy, dataset_version_policy
from .serializers_datasets import (
    AugmentSerializer,
    CleaningSerializer,
    DatasetRowSerializer,
    DatasetSerializer,
    DatasetUploadSerializer,
    DatasetVersionSerializer,
    DistillationSerializer,
    KnowledgeDatasetSerializer,
    RowPreviewSerializer,
    UploadErrorsSerializer,
    VersionUploadSerializer,
)

UPLOAD_ERRORS = OpenApiResponse(UploadErrorsSerializer, description="Every error per row; nothing was imported.")


def _read(upload) -> bytes:
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise ValidationError({"file": [f"The file is larger than the upload limit ({settings.UPLOAD_MAX_BYTES} bytes)."]})
    return upload.read()


def _errors_response(exc: services.DatasetUploadInvalid) -> Response:
    result = exc.result
    return Response(
        {"detail": f"{len(result.errors)} error(s); nothing was imported.",
         "errors": [e.as_dict() for e in result.errors], "truncated": result.truncated},
        status=status.HTTP_400_BAD_REQUEST,
    )


def _department(user, pk: int) -> Department:
    if not dataset_policy.user_may_add_in(user, pk):
        raise ValidationError({"department": ["Not a department whose datasets you may create."]})
    return Department.objects.get(pk=pk)


class DatasetViewSet(PolicyModelViewSet):
    """Datasets you may use for training (your department's as its admin; all as an ML engineer)."""

    policy = dataset_policy
    serializer_class = DatasetSerializer
    http_method_names = ["get", "post", "head", "options"]
    policy_actions = {"upload": "change", "from_knowledge": "add", "distill": "add"}

    def refine_queryset(self, queryset):
        return queryset.select_related("latest_version__created_by")

    @extend_schema(request={"multipart/form-data": DatasetUploadSerializer},
                   responses={201: DatasetVersionSerializer, 400: UPLOAD_ERRORS}, summary="Upload a new dataset")
    def create(self, request, *args, **kwargs):
        data = DatasetUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            version = services.dataset_upload(
                actor=request.user, file_name=values["file"].name, data=_read(values["file"]), fmt=values["format"],
                department=_department(request.user, values["department"]), name=values["name"],
                description=values["description"], ip=client_ip(request),
            )
        except services.DatasetUploadInvalid as exc:
            return _errors_response(exc)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request={"multipart/form-data": VersionUploadSerializer},
                   responses={201: DatasetVersionSerializer, 200: DatasetVersionSerializer, 400: UPLOAD_ERRORS},
                   summary="Upload a new version (200 when the content equals the latest version)")
    @action(detail=True, methods=["post"])
    def upload(self, request, pk=None):
        dataset = self.get_object()
        data = VersionUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        latest = dataset.latest_version_id
        try:
            version = services.dataset_upload(
                actor=request.user, dataset=dataset, file_name=data.validated_data["file"].name,
                data=_read(data.validated_data["file"]), fmt=data.validated_data["format"], ip=client_ip(request),
            )
        except services.DatasetUploadInvalid as exc:
            return _errors_response(exc)
        code = status.HTTP_200_OK if version.pk == latest else status.HTTP_201_CREATED
        return Response(DatasetVersionSerializer(version).data, status=code)

    @extend_schema(request=KnowledgeDatasetSerializer, responses={201: DatasetVersionSerializer},
                   summary="Build a dataset of QA pairs from the knowledge you may read (incremental with `since`)")
    @action(detail=False, methods=["post"], url_path="from-knowledge")
    def from_knowledge(self, request):
        data = KnowledgeDatasetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            version = services.dataset_from_knowledge(
                actor=request.user, department=_department(request.user, values["department"]), name=values["name"],
                knowledge_base_ids=values["knowledge_bases"] or None, since=values["since"],
                use_model=values["use_model"], ip=client_ip(request),
            )
        except services.DatasetOperationError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)


    @extend_schema(
        request=DistillationSerializer, responses={202: JobSerializer},
        summary="Distil: a teacher model endpoint answers prompts in a background job (GET /api/jobs/{id}/ for progress; "
                "its result names the new dataset version, whose report records the teacher)")
    @action(detail=False, methods=["post"], url_path="distill")
    def distill(self, request):
        data = DistillationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        department = _department(request.user, values["department"])
        teacher = selectors.distillation_teachers(user=request.user).filter(pk=values["teacher"]).first()
        if teacher is None:
            raise ValidationError({"teacher": ["Not an enabled OpenAI-compatible model endpoint."]})
        prompts = list(values["prompts"])
        version = None
        if values["prompts_from_version"] is not None:
            version = dataset_version_policy.instances_user_has_permission_for(request.user, "view").filter(
                pk=values["prompts_from_version"]).select_related("dataset").first()
            if version is None:
                raise ValidationError({"prompts_from_version": ["No such dataset version."]})
            prompts += selectors.distillation_prompts(user=request.user, version=version)
        try:
            job = services.dataset_distill_enqueue(
                actor=request.user, department=department, endpoint=teacher, prompts=prompts, name=values["name"],
                system_prompt=values["system_prompt"], max_tokens=values["max_tokens"], prompts_from=version,
            )
        except services.DatasetOperationError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DatasetVersionViewSet(PolicyReadOnlyViewSet):
    """Dataset versions: immutable; cleaning and augmentation make new ones."""

    policy = dataset_version_policy
    serializer_class = DatasetVersionSerializer
    policy_actions = {"rows": "view", "preview": "view", "clean": "view", "augment": "view"}

    def refine_queryset(self, queryset):
        queryset = queryset.select_related("created_by", "dataset").order_by("dataset_id", "-number")
        dataset = self.request.query_params.get("dataset")
        if self.action == "list" and dataset:
            if not dataset.isdecimal():
                raise ValidationError({"dataset": "A dataset id is required."})
            queryset = queryset.filter(dataset_id=int(dataset))
        return queryset

    @extend_schema(responses=DatasetRowSerializer(many=True), summary="The version's rows (paginated)")
    @action(detail=True, methods=["get"])
    def rows(self, request, pk=None):
        version = self.get_object()
        page = self.paginate_queryset(version.rows.order_by("index"))
        if page is None:
            return Response(DatasetRowSerializer(version.rows.order_by("index"), many=True).data)
        return self.get_paginated_response(DatasetRowSerializer(page, many=True).data)

    def _new_version(self, run):
        try:
            version, created = run()
        except DjangoPermissionDenied as exc:
            raise PermissionDenied() from exc
        except services.DatasetOperationError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=CleaningSerializer, responses={201: DatasetVersionSerializer},
                   summary="Clean into a new version (report: what each step removed or changed)")
    @action(detail=True, methods=["post"])
    def clean(self, request, pk=None):
        version = self.get_object()
        data = CleaningSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = CleaningOptions(**data.validated_data)
        return self._new_version(lambda: services.dataset_clean(
            actor=request.user, version=version, options=options, ip=client_ip(request)))

    @extend_schema(request=AugmentSerializer, responses={201: DatasetVersionSerializer},
                   summary="Augment into a new version (new rows are marked augmented)")
    @action(detail=True, methods=["post"])
    def augment(self, request, pk=None):
        version = self.get_object()
        data = AugmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._new_version(lambda: services.dataset_augment(
            actor=request.user, version=version, ip=client_ip(request), **data.validated_data))

    @extend_schema(parameters=[OpenApiParameter("row", int), OpenApiParameter("max_length", int)],
                   responses=RowPreviewSerializer, summary="One row rendered with the chat template and its loss mask")
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        from .datasets.preview import preview_row

        version = self.get_object()
        try:
            index = int(request.query_params.get("row", 0))
            max_length = int(request.query_params["max_length"]) if request.query_params.get("max_length") else None
        except ValueError as exc:
            raise ValidationError({"detail": "row and max_length must be integers."}) from exc
        row = version.rows.filter(index=index).first()
        if row is None:
            raise NotFound()
        try:
            tokenizer = load_tokenizer()
        except TokenizerUnavailable as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        p = preview_row(tokenizer, row.messages, max_length)
        return Response(RowPreviewSerializer({
            "index": row.index, "text": p.text, "tokens": p.tokens, "loss_tokens": p.loss_tokens,
            "end_of_turn_in_loss": p.end_of_turn_in_loss, "truncated": p.truncated,
        }).data)
