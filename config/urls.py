from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as account_views

handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"

api_patterns = [
    path("", include("accounts.api_urls")),
    path("", include("core.api_urls")),
    path("", include("sources.api_urls")),
    path("retrieval/", include("retrieval.api_urls")),
    path("training/", include("training.api_urls")),
    path("health/", include("health.api_urls")),
    path("", include("knowledge.api_urls")),
    path("", include("knowledge.ingestion.api_urls")),
    path("", include("chat.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("", include("core.urls")),
    path("accounts/", include("accounts.urls")),
    path("people/", include("accounts.people_urls")),
    path("knowledge/", include("knowledge.urls")),
    path("knowledge/", include("knowledge.ingestion.urls")),
    path("chat/", include("chat.urls")),
    path("training/", include("training.urls")),
    path("sources/", include("sources.urls")),
    path("retrieval/", include("retrieval.urls")),
    path("health/", include("health.urls")),
    # Browsers ask for /favicon.ico on their own; answer with the vendored icon.
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"))), name="favicon"),
    path("i18n/setlang/", account_views.set_language, name="set_language"),
    path("django-admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    # OpenAI-compatible chat completions and models, for OpenAI clients (base_url …/v1).
    path("v1/", include("chat.openai_urls")),
]
