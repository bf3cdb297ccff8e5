from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api_datasets

router = DefaultRouter()
router.register("datasets", api_datasets.DatasetViewSet, basename="dataset")
router.register("dataset-versions", api_datasets.DatasetVersionViewSet, basename="dataset-version")

urlpatterns = [path("", include(router.urls)), path("", include("training.api_urls_jobs"))]
