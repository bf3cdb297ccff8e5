from django.urls import include, path
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings

from . import api

router = DefaultRouter()
router.register("departments", api.DepartmentViewSet, basename="department")
router.register("memberships", api.MembershipViewSet, basename="membership")
router.register("users", api.UserViewSet, basename="user")

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    # DRF's view pins its own parsers; this one takes the project's (depth- and size-limited JSON).
    path("auth/token/", ObtainAuthToken.as_view(parser_classes=api_settings.DEFAULT_PARSER_CLASSES), name="api-token"),
    path("", include(router.urls)),
]
