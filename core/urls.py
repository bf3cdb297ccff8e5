from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("system/", views.system, name="system"),
    path("system/check/", views.system_check_start, name="system_check"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
]
