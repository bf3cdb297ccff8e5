from django.urls import path

from . import views_jobs as views

urlpatterns = [
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:pk>/resume/", views.job_resume, name="job_resume"),
    path("models/", views.model_list, name="model_list"),
    path("models/<int:pk>/activate/", views.model_activate, name="model_activate"),
    path("models/<int:pk>/evaluate/", views.model_evaluate, name="model_evaluate"),
    path("models/restore/", views.model_restore, name="model_restore"),
    path("models/deactivate/", views.model_deactivate, name="model_deactivate"),
    path("evaluations/<int:pk>/", views.evaluation_detail, name="evaluation_detail"),
]
