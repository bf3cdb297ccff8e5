from django.urls import path

from . import api

urlpatterns = [
    path("knowledge-bases/<int:pk>/settings/", api.KnowledgeBaseHealthView.as_view(), name="health-knowledge-base-settings"),
]
