from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, Throttled, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.audit import client_ip

from . import limits, services
from .models import ApiKey, Department
from .policy import api_key_policy, department_policy, membership_policy, user_policy
from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyObtainSerializer,
    ApiKeySerializer,
    DepartmentSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    MeSerializer,
    UserSerializer,
)
from .viewsets import PolicyModelViewSet, PolicyReadOnlyViewSet, drf_validation_error


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user, memberships and navigation")
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class DepartmentViewSet(PolicyModelViewSet):
    """Departments: every signed-in user reads them; company admins write."""

    policy = department_policy
    serializer_class = DepartmentSerializer

    def refine_queryset(self, queryset):
        return queryset.order_by("name")

    def perform_create(self, serializer):
        try:
            serializer.instance = services.department_create(
                actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = services.department_update(
                actor=self.request.user,
                department=serializer.instance,
                ip=client_ip(self.request),
                **serializer.validated_data,
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc

    def perform_destroy(self, instance: Department):
        from django.db.models import ProtectedError

        try:
            services.department_delete(actor=self.request.user, department=instance, ip=client_ip(self.request))
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        except ProtectedError as exc:
            raise ValidationError({"detail": "The department still has sub-departments or history."}) from exc


class MembershipViewSet(PolicyModelViewSet):
    """Memberships: your own, plus those of departments whose people you manage."""

    policy = membership_policy
    serializer_class = MembershipSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.select_related("user", "department").order_by("department__name", "user__username")

    def get_serializer_class(self):
        if self.action == "partial_update":
            return MembershipRoleSerializer
        return MembershipSerializer

    def perform_create(self, serializer):
        # The serializer's fields take the user and department among those the actor may see.
        data = serializer.validated_data
        serializer.instance = services.membership_set(
            actor=self.request.user,
            user=data["user"],
            department=data["department"],
            role=data["role"],
            ip=client_ip(self.request),
        )

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user,
            user=membership.user,
            department=membership.department,
            role=serializer.validated_data["role"],
            ip=client_ip(request),
        )
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance):
        services.membership_delete(actor=self.request.user, membership=instance, ip=client_ip(self.request))


class UserViewSet(PolicyReadOnlyViewSet):
    """Users: yourself, the people of departments you manage; everyone for company admins."""

    policy = user_policy
    serializer_class = UserSerializer
    policy_actions = {"deactivate": "change", "reactivate": "change"}
    actions_without_body = frozenset({"deactivate", "reactivate"})

    def refine_queryset(self, queryset):
        return queryset.order_by("username")

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Company admins: the account can no longer sign in, its sessions end and its API keys are revoked."""
        return self._set_active(request, active=False)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        """Company admins: the account may sign in again (its revoked API keys stay revoked)."""
        return self._set_active(request, active=True)

    def _set_active(self, request, *, active: bool) -> Response:
        person = self.get_object()
        try:
            services.user_set_active(actor=request.user, user=person, active=active, ip=client_ip(request))
        except DjangoPermissionDenied:
            raise PermissionDenied() from None
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        person.refresh_from_db()
        return Response(UserSerializer(person).data)



def _created_key_response(api_key: ApiKey, key: str, status_code: int) -> Response:
    data = ApiKeyCreatedSerializer(api_key).data
    data["token"] = key
    return Response(data, status=status_code)


class ApiKeyObtainView(APIView):
    """Exchange a username and password for a new API key (rate-limited per IP and username)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=ApiKeyObtainSerializer,
        responses={
            200: ApiKeyCreatedSerializer,
            400: OpenApiResponse(description="Wrong username or password"),
            429: OpenApiResponse(description="Too many failed attempts; see the Retry-After header"),
        },
        summary="Create an API key from a username and password",
        description="Every call creates a new key, valid for the REST API and /v1 until revoked. "
        "Send it as `Authorization: Bearer <key>` (or `Token <key>`). It is shown only in this response.",
        auth=[],
    )
    def post(self, request):
        serializer = ApiKeyObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        ip = client_ip(request)
        try:
            limits.login_guard(ip=ip, username=username)
        except limits.RateLimited as refusal:
            raise Throttled(wait=refusal.retry_after, detail=refusal.message) from None
        user = authenticate(request, username=username, password=serializer.validated_data["password"])
        if user is None:  # the failure stays counted (accounts.backends)
            raise ValidationError({"non_field_errors": [_("Unable to log in with provided credentials.")]})
        try:
            api_key, key = services.api_key_create(user=user, name=serializer.validated_data.get("name", ""), ip=ip)
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        return _created_key_response(api_key, key, status.HTTP_200_OK)


class ApiKeyViewSet(PolicyModelViewSet):
    """Your API keys: list them (prefix only), create one (the key is shown once), revoke one."""

    policy = api_key_policy
    serializer_class = ApiKeySerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.order_by("-created_at", "-pk")

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            api_key, key = services.api_key_create(
                user=request.user, name=serializer.validated_data.get("name", ""), ip=client_ip(request)
            )
        except DjangoValidationError as exc:
            raise drf_validation_error(exc) from exc
        return _created_key_response(api_key, key, status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        api_key = self.get_object()
        services.api_key_revoke(actor=request.user, api_key=api_key, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
