from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("sources", api.SourceViewSet, basename="source")
router.register("source-allowed-hosts", api.AllowedHostViewSet, basename="source-allowed-host")

urlpatterns = [path("", include(router.urls))]
