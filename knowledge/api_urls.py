from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("knowledge-bases", api.KnowledgeBaseViewSet, basename="knowledge-base")
router.register("documents", api.DocumentViewSet, basename="document")
router.register("versions", api.VersionViewSet, basename="version")
router.register("reviews", api.ReviewViewSet, basename="review")
router.register("audit", api.AuditEntryViewSet, basename="audit-entry")

urlpatterns = [path("", include(router.urls))]
