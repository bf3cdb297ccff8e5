from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = _("Knowledge health")

    def ready(self) -> None:
        from knowledge.signals import searchable_chunks_changed

        from . import jobs  # noqa: F401  (registers the job handlers)
        from .services import on_searchable_chunks_changed

        searchable_chunks_changed.connect(on_searchable_chunks_changed, dispatch_uid="health.facts")
