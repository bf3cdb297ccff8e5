from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("departments", api.DepartmentViewSet, basename="department")
router.register("memberships", api.MembershipViewSet, basename="membership")
router.register("users", api.UserViewSet, basename="user")
router.register("auth/keys", api.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("auth/token/", api.ApiKeyObtainView.as_view(), name="api-token"),
    path("", include(router.urls)),
]
