from django.urls import path

from . import views_ingest

app_name = "ingest"

urlpatterns = [
    path("versions/<int:pk>/ingestion/", views_ingest.ingestion_status, name="status"),
    path("versions/<int:pk>/ingestion/retry/", views_ingest.ingestion_retry, name="retry"),
    path("versions/<int:pk>/chunks/", views_ingest.chunk_list, name="chunks"),
    path("bases/<int:kb_pk>/upload/", views_ingest.upload, name="upload"),
    path("embedding/", views_ingest.embedding_model, name="embedding"),
]
