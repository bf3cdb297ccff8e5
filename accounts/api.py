from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.audit import client_ip

from . import services
from .models import Department
from .policy import department_policy, membership_policy, user_policy
from .serializers import DepartmentSerializer, MembershipRoleSerializer, MembershipSerializer, MeSerializer, UserSerializer
from .viewsets import PolicyModelViewSet, PolicyReadOnlyViewSet


def _django_errors(exc) -> ValidationError:
    return ValidationError(getattr(exc, "message_dict", None) or {"detail": exc.messages})


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
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            serializer.instance = services.department_create(
                actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_update(self, serializer):
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            serializer.instance = services.department_update(
                actor=self.request.user,
                department=serializer.instance,
                ip=client_ip(self.request),
                **serializer.validated_data,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_destroy(self, instance: Department):
        from django.db.models import ProtectedError

        try:
            instance.delete()
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
        data = serializer.validated_data
        user = data["user"]
        # The target user and department must be visible to the actor: 404-like refusal otherwise.
        if not user_policy.user_has_permission_for_instance(self.request.user, "view", user):
            raise ValidationError({"user": "Unknown user."})
        serializer.instance = services.membership_set(
            actor=self.request.user,
            user=user,
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

    def refine_queryset(self, queryset):
        return queryset.order_by("username")

