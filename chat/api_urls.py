from rest_framework.routers import DefaultRouter

from .api import AssistantViewSet, EndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.register("chat/assistants", AssistantViewSet, basename="chat-assistant")
router.register("chat/endpoints", EndpointViewSet, basename="chat-endpoint")

urlpatterns = router.urls
