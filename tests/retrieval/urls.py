from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("retrieval/", include("retrieval.urls")),
    path("api/retrieval/", include("retrieval.api_urls")),
]
