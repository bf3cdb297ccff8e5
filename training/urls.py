from django.urls import include, path

from . import views

app_name = "training"

urlpatterns = [
    path("", views.index, name="index"),
    path("datasets/", include("training.urls_datasets")),
    path("", include("training.urls_jobs")),
]
