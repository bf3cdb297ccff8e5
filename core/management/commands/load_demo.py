from django.core.management.base import BaseCommand

from core.demo import load_all


class Command(BaseCommand):
    help = "Load the demo departments, users and content (idempotent)."

    def handle(self, *args, **options):
        for loader, summary in load_all().items():
            self.stdout.write(f"{loader}: {summary}")
