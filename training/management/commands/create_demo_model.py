from django.core.management.base import BaseCommand

from training.finetune.demo_model import ensure_demo_model


class Command(BaseCommand):
    help = "Build the tiny demo causal LM (Qwen2 + tokenizer trained on the demo knowledge base), cached under var/models/."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Rebuild even when the cached model exists.")

    def handle(self, *args, force=False, **options):
        path = ensure_demo_model(force=force, log=lambda m: self.stdout.write(m))
        self.stdout.write(self.style.SUCCESS(str(path)))
