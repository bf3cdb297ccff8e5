from django.urls import path

from . import views

app_name = "health"

urlpatterns = [
    path("", views.index, name="index"),
    path("conflicts/", views.conflicts, name="conflicts"),
    path("conflicts/<int:pk>/dismiss/", views.conflict_dismiss, name="conflict_dismiss"),
    path("conflicts/scan/", views.scan_start, name="scan_start"),
    path("carried-over/", views.carry_overs, name="carry_overs"),
    path("carried-over/<int:pk>/dismiss/", views.carry_over_dismiss, name="carry_over_dismiss"),
    path("stale/", views.stale, name="stale"),
    path("stale/<int:pk>/reviewed/", views.mark_reviewed, name="mark_reviewed"),
    path("gaps/", views.gaps, name="gaps"),
    path("gaps/scan/", views.gap_scan_start, name="gap_scan"),
    path("gaps/<int:pk>/draft/", views.gap_draft, name="gap_draft"),
    path("not-retrieved/", views.unretrieved, name="unretrieved"),
    path("knowledge-bases/<int:pk>/settings/", views.knowledge_base_settings, name="knowledge_base_settings"),
    path("notifications/", views.notifications, name="notifications"),
]
