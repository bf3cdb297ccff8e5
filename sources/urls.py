from django.urls import path

from . import views

app_name = "sources"

urlpatterns = [
    path("knowledge-bases/<int:kb_pk>/", views.source_list, name="list"),
    path("knowledge-bases/<int:kb_pk>/new/<str:kind>/", views.source_create, name="create"),
    path("<int:pk>/", views.source_detail, name="detail"),
    path("<int:pk>/edit/", views.source_edit, name="edit"),
    path("<int:pk>/sync/", views.source_sync, name="sync"),
    path("<int:pk>/run-as-me/", views.source_run_as_me, name="run_as_me"),
    path("<int:pk>/delete/", views.source_delete, name="delete"),
    path("allowed-hosts/", views.allowed_hosts, name="allowed_hosts"),
    path("allowed-hosts/<int:pk>/delete/", views.allowed_host_delete, name="allowed_host_delete"),
]
