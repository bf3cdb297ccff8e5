from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("messages/<int:message_id>/sources/<int:n>/", views.citation, name="citation"),
]
