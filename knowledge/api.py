"""The knowledge API: knowledge bases, documents, versions (read-only), diffs, reviews, rollback
and the audit log. Querysets come from the policies (PolicyViewSetMixin); writes go through
knowledge.services; a hidden object is a 404 exactly like a missing one."""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from accounts.viewsets import PolicyModelViewSet, PolicyReadOnlyViewSet, drf_validation_error
from core.audit import client_ip

from . import selectors, services
from .diff import diff_texts
from .ingestion.selectors import version_text
from .models import EditLock
from .policy import (
    audit_entry_policy,
    document_policy,
    knowledge_base_policy,
    request_knowledge_access,
    review_policy,
    version_policy,
)
from .serializers import (
    AuditEntrySerializer,
    AuditFilterSerializer,
    DiffSerializer,
    DocumentCreateSerializer,
    DocumentFilterSerializer,
    DocumentSerializer,
    DocumentUpdateSerializer,
    EditLockSerializer,
    KnowledgeBaseSerializer,
    KnowledgeBaseUpdateSerializer,
    ReviewApproveSerializer,
    ReviewRequestChangesSerializer,
    ReviewSerializer,
    ReasonSerializer,
    RollbackSerializer,
    StateErrorSerializer,
    VersionConflictSerializer,
    VersionCreateSerializer,
    VersionSerializer,
    VersionSummarySerializer,
)

STATE_ERROR = OpenApiResponse(StateErrorSerializer, description="The state machine does not allow this change.")


class StateConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


@contextmanager
def service_errors():
    """Turn service exceptions into HTTP answers: illegal transitions and locks are 409s, other
    validation errors 400s (PermissionDenied and Http404 are already handled by DRF)."""
    try:
        yield
    except services.IllegalTransition as exc:
        raise StateConflict({"detail": " ".join(exc.messages), "code": exc.code or "illegal_transition"}) from exc
    except services.EditLocked as exc:
        raise StateConflict(
            {
                "detail": str(exc),
                "code": "edit_locked",
                "lock_owner": exc.lock.owner.get_username(),
                "lock_acquired_at": exc.lock.acquired_at.isoformat(),
            }
        ) from exc
    except DjangoValidationError as exc:
        raise drf_validation_error(exc) from exc


class KnowledgeBaseViewSet(PolicyModelViewSet):
    """Knowledge bases you may read; the knowledge managers of the owning department edit them."""

    policy = knowledge_base_policy
    serializer_class = KnowledgeBaseSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.select_related("department").prefetch_related("shared_with").order_by("name", "id")

    def get_serializer_class(self):
        if self.action == "partial_update":
            return KnowledgeBaseUpdateSerializer
        return KnowledgeBaseSerializer

    def perform_create(self, serializer):
        with service_errors():
            serializer.instance = services.knowledge_base_create(
                actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data
            )

    def perform_update(self, serializer):
        with service_errors():
            serializer.instance = services.knowledge_base_update(
                actor=self.request.user,
                knowledge_base=serializer.instance,
                ip=client_ip(self.request),
                **serializer.validated_data,
            )


DOCUMENT_FILTERS = [
    OpenApiParameter("knowledge_base", int, description="Only documents of this knowledge base."),
    OpenApiParameter("q", str, description="Words in the title."),
    OpenApiParameter("tag", str, description="Documents carrying this tag."),
    OpenApiParameter("state", str, enum=["draft", "in_review", "published", "archived"]),
    OpenApiParameter("ordering", str, enum=list(selectors.DOCUMENT_ORDERS)),
]


@extend_schema_view(list=extend_schema(parameters=DOCUMENT_FILTERS))
class DocumentViewSet(PolicyModelViewSet):
    """Documents you may read: plain readers see published documents only. Content changes are
    new versions (POST versions/ with the base version); title, tags and review-by date are PATCHed."""

    policy = document_policy
    serializer_class = DocumentSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    actions_without_body = frozenset({"submit", "lock", "lock_release", "lock_break"})
    policy_actions = {
        "versions_create": "change",
        "submit": "submit",
        "rollback": "rollback",
        "archive": "archive",
        "restore": "restore",
    }

    def refine_queryset(self, queryset):
        if self.action != "list":
            return selectors.filter_documents(queryset, user=self.request.user)
        filters = DocumentFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        return selectors.filter_documents(
            queryset,
            user=self.request.user,
            knowledge_base=data.get("knowledge_base"),
            q=data["q"],
            tag=data["tag"],
            state=data["state"],
            order=data["ordering"],
        )

    def _document_data(self, document) -> dict:
        return DocumentSerializer(selectors.document_get(user=self.request.user, pk=document.pk),
                                  context=self.get_serializer_context()).data

    @extend_schema(request=DocumentCreateSerializer, responses={201: DocumentSerializer})
    def create(self, request, *args, **kwargs):
        serializer = DocumentCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with service_errors():
            document = services.document_create(actor=request.user, ip=client_ip(request), **serializer.validated_data)
        return Response(self._document_data(document), status=status.HTTP_201_CREATED)

    @extend_schema(request=DocumentUpdateSerializer, responses=DocumentSerializer)
    def partial_update(self, request, *args, **kwargs):
        document = self.get_object()
        serializer = DocumentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            services.document_update_metadata(
                actor=request.user, document=document, ip=client_ip(request), **serializer.validated_data
            )
        return Response(self._document_data(document))

    @extend_schema(summary="The versions of a document you may read", responses=VersionSummarySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="versions", url_name="versions")
    def versions(self, request, pk=None):
        document = self.get_object()
        versions = selectors.version_list(user=request.user, document=document)
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(VersionSummarySerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Save an edit as a new version",
        request=VersionCreateSerializer,
        responses={
            201: VersionSerializer,
            409: OpenApiResponse(
                VersionConflictSerializer,
                description="The edit was based on an older version: the latest version and your text come back.",
            ),
        },
    )
    @versions.mapping.post
    def versions_create(self, request, pk=None):
        document = self.get_object()
        serializer = VersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with service_errors():
                version = services.document_version_create(
                    actor=request.user,
                    document=document,
                    content=data["content"],
                    base_version_number=data["base_version"],
                    change_note=data["change_note"],
                    ip=client_ip(request),
                )
        except services.VersionConflict as conflict:
            body = {
                "detail": str(conflict),
                "code": "version_conflict",
                "base_version": data["base_version"],
                "latest": VersionSerializer(conflict.latest, context={"request": request}).data,
                "content": conflict.content,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(VersionSerializer(version, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Compare two versions, word by word",
        parameters=[
            OpenApiParameter("from", int, required=True, description="The older version number."),
            OpenApiParameter("to", int, required=True, description="The newer version number."),
        ],
        responses=DiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        document = self.get_object()
        numbers = {}
        for name in ("from", "to"):
            try:
                numbers[name] = int(request.query_params[name])
            except (KeyError, ValueError):
                raise ValidationError({name: "A version number is required."}) from None
        old = selectors.version_get(user=request.user, document=document, number=numbers["from"])
        new = selectors.version_get(user=request.user, document=document, number=numbers["to"])
        return Response(
            {
                "document": document.pk,
                "from_version": VersionSummarySerializer(old, context={"request": request}).data,
                "to_version": VersionSummarySerializer(new, context={"request": request}).data,
                "diff": diff_texts(version_text(old), version_text(new)),
            }
        )

    def _lock_document(self):
        """The document, for those who may know who edits it (editors and reviewers, as on its page);
        to a plain reader its lock is hidden like a missing object."""
        document = self.get_object()
        if not request_knowledge_access(self.request).sees_drafts(document):
            raise Http404
        return document

    def _lock_data(self, document) -> dict:
        lock = EditLock.objects.select_related("owner").filter(document=document).first()
        return EditLockSerializer({
            "locked": lock is not None, "owner": lock and lock.owner.get_username(),
            "yours": lock is not None and lock.owner_id == self.request.user.pk,
            "acquired_at": lock and lock.acquired_at, "refreshed_at": lock and lock.refreshed_at,
            "expires_at": lock and lock.expires_at, "expired": lock is not None and lock.is_expired,
        }).data

    @extend_schema(summary="Who is editing the document (its edit lock)", responses=EditLockSerializer,
                   methods=["GET"])
    @extend_schema(
        summary="Take the edit lock, or keep yours alive (an editor's heartbeat; an expired lock is taken over, audited)",
        request=None, responses={200: EditLockSerializer, 409: STATE_ERROR}, methods=["POST"],
    )
    @action(detail=True, methods=["get", "post"], url_path="lock", url_name="lock")
    def lock(self, request, pk=None):
        document = self._lock_document()
        if request.method == "POST":
            with service_errors():
                services.edit_lock_acquire(actor=request.user, document=document, ip=client_ip(request))
        return Response(self._lock_data(document))

    @extend_schema(summary="Release your edit lock (nothing happens when you hold none)", request=None,
                   responses=EditLockSerializer)
    @action(detail=True, methods=["post"], url_path="lock/release", url_name="lock-release")
    def lock_release(self, request, pk=None):
        document = self._lock_document()
        services.edit_lock_release(actor=request.user, document=document)
        return Response(self._lock_data(document))

    @extend_schema(summary="Break someone else's edit lock (the department's admins; audited)", request=None,
                   responses=EditLockSerializer)
    @action(detail=True, methods=["post"], url_path="lock/break", url_name="lock-break")
    def lock_break(self, request, pk=None):
        document = self._lock_document()
        services.edit_lock_break(actor=request.user, document=document, ip=client_ip(request))
        return Response(self._lock_data(document))

    @extend_schema(
        summary="Submit the latest version for review (publishes at once when no review is required)",
        request=None,
        responses={200: ReviewSerializer, 204: None, 409: STATE_ERROR},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        document = self.get_object()
        with service_errors():
            review = services.document_submit(actor=request.user, document=document, ip=client_ip(request))
        if review is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewSerializer(review).data)

    @extend_schema(
        summary="Restore an old version as a new version, and submit it",
        request=RollbackSerializer,
        responses={201: VersionSerializer, 409: STATE_ERROR},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        document = self.get_object()
        serializer = RollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            version = services.document_rollback(
                actor=request.user,
                document=document,
                to_number=serializer.validated_data["to_number"],
                ip=client_ip(request),
            )
        return Response(VersionSerializer(version, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Archive the document (a published one needs a reason)",
        request=ReasonSerializer,
        responses={200: DocumentSerializer, 409: STATE_ERROR},
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        document = self.get_object()
        serializer = ReasonSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        with service_errors():
            services.document_archive(
                actor=request.user, document=document, reason=serializer.validated_data.get("reason", ""),
                ip=client_ip(request),
            )
        return Response(self._document_data(document))

    @extend_schema(
        summary="Restore an archived document: its latest version is submitted like any change",
        request=ReasonSerializer,
        responses={200: ReviewSerializer, 204: None, 409: STATE_ERROR},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        document = self.get_object()
        serializer = ReasonSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        with service_errors():
            review = services.document_restore(
                actor=request.user, document=document, reason=serializer.validated_data.get("reason", ""),
                ip=client_ip(request),
            )
        if review is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewSerializer(review).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("document", int, description="Only versions of this document.")],
        responses=VersionSummarySerializer(many=True),
    )
)
class VersionViewSet(PolicyReadOnlyViewSet):
    """Document versions: immutable. Plain readers see live versions only."""

    policy = version_policy
    serializer_class = VersionSerializer

    def refine_queryset(self, queryset):
        queryset = queryset.select_related("author", "document__knowledge_base").order_by("document_id", "-number")
        document = self.request.query_params.get("document")
        if self.action == "list" and document:
            if not document.isdecimal():
                raise ValidationError({"document": "A document id is required."})
            queryset = queryset.filter(document_id=int(document))
        if self.action == "list":
            queryset = queryset.defer("content")
        return queryset

    def get_serializer_class(self):
        return VersionSummarySerializer if self.action == "list" else VersionSerializer

    @extend_schema(
        summary="Download the original file (audited)",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="file", url_name="file")
    def file(self, request, pk=None):
        version = self.get_object()
        handle = services.version_file_open(actor=request.user, version=version, ip=client_ip(request))
        return FileResponse(
            handle, as_attachment=True, filename=version.file_name or "original",
            content_type=version.file_mime or "application/octet-stream",
        )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["open", "approved", "changes_requested", "cancelled"]),
            OpenApiParameter("document", int),
        ]
    )
)
class ReviewViewSet(PolicyReadOnlyViewSet):
    """Review requests of the departments you edit or review; reviewers approve or request changes."""

    policy = review_policy
    serializer_class = ReviewSerializer
    policy_actions = {"approve": "review", "request_changes": "review"}

    def refine_queryset(self, queryset):
        queryset = queryset.select_related("document", "version", "requested_by", "decided_by").defer(
            "version__content"
        )
        if self.action == "list":
            if state := self.request.query_params.get("state"):
                queryset = queryset.filter(state=state)
            if (document := self.request.query_params.get("document", "")).isdecimal():
                queryset = queryset.filter(document_id=int(document))
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=ReviewApproveSerializer, responses={200: ReviewSerializer, 409: STATE_ERROR})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        review = self.get_object()
        serializer = ReviewApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            review = services.review_approve(
                actor=request.user, review=review, comment=serializer.validated_data["comment"], ip=client_ip(request)
            )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=ReviewRequestChangesSerializer, responses={200: ReviewSerializer, 409: STATE_ERROR})
    @action(detail=True, methods=["post"], url_path="request-changes", url_name="request-changes")
    def request_changes(self, request, pk=None):
        review = self.get_object()
        serializer = ReviewRequestChangesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            review = services.review_request_changes(
                actor=request.user, review=review, comment=serializer.validated_data["comment"], ip=client_ip(request)
            )
        return Response(ReviewSerializer(review).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE),
            OpenApiParameter("author", str, description="A username or user id."),
            OpenApiParameter("department", str, description="A department code or id."),
            OpenApiParameter("action", str, description="create, edit, submit, approve, ..."),
        ]
    )
)
class AuditEntryViewSet(PolicyReadOnlyViewSet):
    """The audit log (append-only): reviewers read their departments' rows, company admins all."""

    policy = audit_entry_policy
    serializer_class = AuditEntrySerializer

    def refine_queryset(self, queryset):
        filters = {}
        if self.action == "list":
            serializer = AuditFilterSerializer(data=self.request.query_params)
            serializer.is_valid(raise_exception=True)
            filters = serializer.validated_data
        return selectors.filter_audit(queryset, **filters).order_by("-created_at", "-id")
