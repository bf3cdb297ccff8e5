from django.urls import path

from . import views_datasets as views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_create, name="create"),
    path("from-knowledge/", views.knowledge_create, name="knowledge"),
    path("from-feedback/", views.feedback_create, name="feedback"),
    path("distill/", views.distill_create, name="distill"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/upload/", views.dataset_version_upload, name="upload"),
    path("<int:pk>/v<int:number>/", views.version_detail, name="version"),
    path("<int:pk>/v<int:number>/clean/", views.version_clean, name="clean"),
    path("<int:pk>/v<int:number>/augment/", views.version_augment, name="augment"),
    path("<int:pk>/v<int:number>/export.jsonl", views.version_export, name="export"),
]
