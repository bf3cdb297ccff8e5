from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import ApiKey, Department, Membership, Role, User
from .policy import PermissionPolicy, department_policy, user_policy
from .selectors import navigation_for


@extend_schema_field(OpenApiTypes.INT)
class PolicyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object given by id, chosen among those `policy` lets the acting user (the
    request's) `action`: a hidden id and a missing one get the same "does not exist" answer.
    Every writable related field of the API is one of these (tests/accounts/test_serializers.py)."""

    def __init__(self, *, policy: PermissionPolicy, action: str = "view", **kwargs):
        self.policy, self.action = policy, action
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.policy.instances_user_has_permission_for(getattr(self.context.get("request"), "user", None),
                                                             self.action)


class DepartmentSerializer(serializers.ModelSerializer):
    parent = PolicyRelatedField(policy=department_policy, required=False, allow_null=True)

    class Meta:
        model = Department
        fields = ["id", "name", "name_zh", "code", "parent", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipSerializer(serializers.ModelSerializer):
    user = PolicyRelatedField(policy=user_policy)
    department = PolicyRelatedField(policy=department_policy)
    username = serializers.CharField(source="user.username", read_only=True)
    department_code = serializers.CharField(source="department.code", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "department", "department_code", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class UserSerializer(serializers.ModelSerializer):
    # A plain string: empty when no address is set ("" is not an "email" in the schema's format).
    email = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "is_active"]
        read_only_fields = fields


class NavigationSerializer(serializers.Serializer):
    knowledge = serializers.BooleanField()
    chat = serializers.BooleanField()
    training = serializers.BooleanField()
    compliance = serializers.BooleanField()
    admin = serializers.BooleanField()
    django_admin = serializers.BooleanField()


class MeSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True)  # empty when none is set
    memberships = serializers.SerializerMethodField()
    navigation = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "is_superuser", "memberships", "navigation"]
        read_only_fields = fields

    @extend_schema_field(MembershipSerializer(many=True))
    def get_memberships(self, user):
        return MembershipSerializer(user.memberships.select_related("department", "user"), many=True).data

    @extend_schema_field(NavigationSerializer)
    def get_navigation(self, user):
        return NavigationSerializer(navigation_for(user=user)).data


class ApiKeySerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = fields


class ApiKeyObtainSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, write_only=True)
    password = serializers.CharField(max_length=4096, write_only=True, style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, write_only=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    token = serializers.CharField(read_only=True, help_text="The API key. Shown only in this response; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = ["token", *ApiKeySerializer.Meta.fields]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
