"""The project's URLs plus the sources app, mounted where the lead mounts them."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("sources/", include("sources.urls")),
    path("api/", include("sources.api_urls")),
    *project_urlpatterns,
]
