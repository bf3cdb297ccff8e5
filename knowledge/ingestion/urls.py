from django.urls import path

from . import views

app_name = "ingest"

urlpatterns = [
    path("versions/<int:pk>/ingestion/", views.ingestion_status, name="status"),
    path("versions/<int:pk>/ingestion/retry/", views.ingestion_retry, name="retry"),
    path("versions/<int:pk>/chunks/", views.chunk_list, name="chunks"),
    path("bases/<int:kb_pk>/upload/", views.upload, name="upload"),
    path("embedding/", views.embedding_model, name="embedding"),
]
