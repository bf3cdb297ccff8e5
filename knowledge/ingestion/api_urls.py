from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("knowledge-bases", api.KnowledgeBaseUploadViewSet, basename="knowledge-base-upload")
router.register("documents", api.DocumentUploadViewSet, basename="document-upload")

urlpatterns = [path("", include(router.urls))]
