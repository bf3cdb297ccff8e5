"""config.urls plus the ingestion pages, until the lead mounts knowledge.urls_ingest."""

from django.urls import include, path

from config.urls import *  # noqa: F403 - the handlers too
from config.urls import urlpatterns as base_urlpatterns

urlpatterns = [*base_urlpatterns, path("knowledge/", include("knowledge.urls_ingest"))]
