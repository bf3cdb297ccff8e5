import pytest
from rest_framework import serializers

from accounts.models import Department
from accounts.policy import department_policy
from accounts.viewsets import PolicyModelViewSet, PolicyReadOnlyViewSet


class _DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]


def test_subclass_overriding_get_queryset_is_refused():
    with pytest.raises(TypeError, match="get_queryset"):

        class Leaky(PolicyModelViewSet):
            policy = department_policy
            serializer_class = _DepartmentSerializer

            def get_queryset(self):
                return Department.objects.all()


def test_subclass_setting_queryset_is_refused():
    with pytest.raises(TypeError, match="queryset"):

        class AlsoLeaky(PolicyReadOnlyViewSet):
            policy = department_policy
            serializer_class = _DepartmentSerializer
            queryset = Department.objects.all()


def test_subclass_using_the_refine_hook_is_accepted():
    class Fine(PolicyReadOnlyViewSet):
        policy = department_policy
        serializer_class = _DepartmentSerializer

        def refine_queryset(self, queryset):
            return queryset.order_by("code")

    assert Fine.policy is department_policy
