from django.urls import path

from . import views

app_name = "people"

urlpatterns = [
    path("", views.people, name="index"),
    path("departments/new/", views.department_create, name="department_create"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:pk>/active/", views.user_set_active, name="user_set_active"),
    path("memberships/", views.membership_set, name="membership_set"),
    path("memberships/<int:pk>/delete/", views.membership_delete, name="membership_delete"),
    path("usage/", views.usage, name="usage"),
    path("usage/departments/<int:department_id>/limits/", views.quota_set, name="quota_set"),
]
