from django.urls import path

from . import views

app_name = "knowledge"

urlpatterns = [
    path("", views.index, name="index"),
    path("bases/new/", views.knowledge_base_create, name="knowledge_base_create"),
    path("bases/<int:pk>/", views.knowledge_base_detail, name="knowledge_base"),
    path("bases/<int:kb_pk>/documents/new/", views.document_create, name="document_create"),
    path("preview/", views.preview, name="preview"),
    path("documents/<int:pk>/", views.document_detail, name="document"),
    path("documents/<int:pk>/details/", views.document_metadata, name="document_metadata"),
    path("documents/<int:pk>/edit/", views.document_edit, name="document_edit"),
    path("documents/<int:pk>/submit/", views.document_submit, name="document_submit"),
    path("documents/<int:pk>/archive/", views.document_archive, name="document_archive"),
    path("documents/<int:pk>/restore/", views.document_restore, name="document_restore"),
    path("documents/<int:pk>/rollback/", views.document_rollback, name="document_rollback"),
    path("documents/<int:pk>/lock/", views.edit_lock_status, name="edit_lock"),
    path("documents/<int:pk>/lock/release/", views.edit_lock_release, name="edit_lock_release"),
    path("documents/<int:pk>/lock/break/", views.edit_lock_break, name="edit_lock_break"),
    path("documents/<int:pk>/lock/heartbeat/", views.edit_lock_heartbeat, name="edit_lock_heartbeat"),
    path("documents/<int:pk>/lock/take-over/", views.edit_lock_take_over, name="edit_lock_take_over"),
    path("documents/<int:pk>/history/", views.history, name="history"),
    path("documents/<int:pk>/diff/", views.diff, name="diff"),
    path("documents/<int:pk>/versions/<int:number>/", views.version_detail, name="version"),
    path("documents/<int:pk>/versions/<int:number>/file/", views.version_file, name="version_file"),
    path("reviews/", views.review_inbox, name="review_inbox"),
    path("reviews/<int:pk>/", views.review_detail, name="review"),
    path("reviews/<int:pk>/approve/", views.review_decide, {"decision": "approve"}, name="review_approve"),
    path(
        "reviews/<int:pk>/request-changes/",
        views.review_decide,
        {"decision": "request_changes"},
        name="review_request_changes",
    ),
    path("compliance/", views.compliance, name="compliance"),
    path("compliance/print/", views.compliance_print, name="compliance_print"),
    path("compliance/versions.csv", views.compliance_csv, name="compliance_csv"),
]
