from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api_jobs

router = DefaultRouter()
router.register("fine_tuning/jobs", api_jobs.FineTuningJobViewSet, basename="fine-tuning-job")
router.register("models", api_jobs.ModelVersionViewSet, basename="model-version")
router.register("evaluations", api_jobs.EvaluationViewSet, basename="evaluation")

urlpatterns = [path("", include(router.urls))]
