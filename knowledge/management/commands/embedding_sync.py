"""Say which embedding model runs here and, when it is not the active space's model, start
re-embedding into a new space in the background (`make run` calls this after migrating).

Searches keep using the active space's vectors until the new space is complete.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from knowledge import embedding
from knowledge.ingestion import selectors, services


class Command(BaseCommand):
    help = "Report the embedding model and start re-embedding when it differs from the active space's."

    def handle(self, *args, **options):
        status = embedding.model_status()
        if status["fallback_reason"]:
            self.stderr.write(self.style.ERROR(
                f"WARNING: the configured embedding model ({status['configured']}) cannot run on this machine: "
                f"{status['fallback_reason']} Falling back to {status['effective']}."
            ))
        info = status["effective_info"]
        self.stdout.write(f"Embedding model: {info.name} ({'multilingual' if info.multilingual else 'not multilingual'})")
        active = embedding.active_space()
        if not selectors.embedding_model_changed():
            return
        try:
            job = services.embedding_space_rebuild_start(actor=None)
        except ValidationError as exc:
            self.stderr.write(self.style.ERROR(f"Re-embedding could not start: {' '.join(exc.messages)}"))
            return
        self.stdout.write(
            f"Re-embedding every chunk with {info.name} in the background (job {job.pk}); searches use "
            f"{active.model_name} until it is complete."
        )
