import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SourcesConfig(AppConfig):
    name = "sources"
    verbose_name = _("Sources")

    def ready(self) -> None:
        from config.celery import Queue
        from core.jobs import WorkKind, register_work

        # One sync run of a source: its SourceSync row is driven by core's mechanism.
        register_work(
            WorkKind(
                name="source_sync",
                model="sources.SourceSync",
                task="sources.tasks.source_sync_task",
                queue=Queue.INGEST,
                running=("running",),
                finished=("succeeded", "partial", "failed"),
                error_field="error",
                # A fetch may take up to its 600 s time limit without a heartbeat.
                stale_after=dt.timedelta(minutes=15),
                soft_time_limit=30 * 60,
                time_limit=31 * 60,
                lost_message=_("The sync did not finish: its worker stopped or timed out."),
            )
        )
