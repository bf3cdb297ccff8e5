from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("ask/", views.ask, name="ask"),
    path("messages/<int:message_id>/regenerate/", views.regenerate, name="regenerate"),
    path("messages/<int:message_id>/stop/", views.stop, name="stop"),
    path("messages/<int:message_id>/feedback/", views.feedback, name="feedback"),
    path("messages/<int:message_id>/sources/<int:n>/", views.citation, name="citation"),
    path("conversations/<int:pk>/rename/", views.conversation_rename, name="conversation_rename"),
    path("conversations/<int:pk>/delete/", views.conversation_delete, name="conversation_delete"),
    path("assistants/", views.assistant_admin, name="assistants"),
    path("assistants/<int:pk>/", views.assistant_admin, name="assistant"),
    path("endpoints/", views.endpoint_admin, name="endpoints"),
    path("endpoints/<int:pk>/", views.endpoint_admin, name="endpoint"),
]
