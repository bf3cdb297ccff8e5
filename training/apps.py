from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = _("Training")

    def ready(self) -> None:
        from llm.base import set_active_model_resolver

        from . import jobs  # noqa: F401  (registers the job kinds with core.jobs)
        from . import tasks_datasets  # noqa: F401  (the datasets' job kinds)
        from .job_selectors import active_model_for_chat

        set_active_model_resolver(active_model_for_chat)
