import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = _("Knowledge")

    def ready(self) -> None:
        from config.celery import Queue
        from core.jobs import WorkKind, register_work

        # Ingestion of one document version: its VersionIngestion row is driven by core's mechanism.
        register_work(
            WorkKind(
                name="ingestion",
                model="knowledge.VersionIngestion",
                task="knowledge.version_ingest",
                task_arg="version_id",
                queue=Queue.INGEST,
                running=("extracting", "chunking", "embedding"),
                claimed="extracting",
                finished=("indexed", "failed"),
                error_field="error_message",
                stale_after=dt.timedelta(minutes=10),
                soft_time_limit=30 * 60,
                time_limit=31 * 60,
                lost_message=_(
                    "The worker stopped while processing this version (it was killed or timed out). "
                    "No partial chunks were kept; retry it."
                ),
                lost_fields={"error_code": "worker_lost"},
            )
        )
        # The ingestion task and the re-embedding job kind, known to every process (web and worker).
        from .ingestion import tasks  # noqa: F401
