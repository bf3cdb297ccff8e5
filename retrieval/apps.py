import datetime as dt

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetrievalConfig(AppConfig):
    name = "retrieval"
    verbose_name = _("Retrieval")

    def ready(self) -> None:
        from django.core.signals import request_finished

        from config.celery import Queue
        from core.jobs import WorkKind, register_work

        from .usage import on_request_finished

        # Which chunks search returned, written after responses went out (retrieval/usage.py).
        request_finished.connect(on_request_finished, dispatch_uid="retrieval.usage")

        # One run of a hit-test set: its HitTestRun row is driven by core's mechanism.
        register_work(
            WorkKind(
                name="hit_test_run",
                model="retrieval.HitTestRun",
                task="retrieval.tasks.hit_test_run_execute_task",
                queue=Queue.DEFAULT,
                running=("running",),
                error_field="error_message",
                queued_at_field="created_at",
                stale_after=dt.timedelta(minutes=10),
                soft_time_limit=20 * 60,
                time_limit=21 * 60,
                lost_message=_("The run did not finish: its worker stopped or timed out. Start it again."),
            )
        )
