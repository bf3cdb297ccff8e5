from django.urls import path

from . import views

app_name = "retrieval"

urlpatterns = [
    path("", views.hit_test, name="hit_test"),
    path("bases/<int:kb_pk>/test-sets/new/", views.test_set_create, name="test_set_create"),
    path("test-sets/<int:pk>/", views.test_set_detail, name="test_set"),
    path("test-sets/<int:pk>/run/", views.test_set_run, name="test_set_run"),
]
