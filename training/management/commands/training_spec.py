import json

from django.core.management.base import BaseCommand

from training.jobs import _training_data
from training.models import FineTuningJob


class Command(BaseCommand):
    help = "Print a fine-tuning job's run spec (rows included) as JSON, for `-m training.finetune.launch` under accelerate/torchrun."

    def add_arguments(self, parser):
        parser.add_argument("job", help="The job's UUID (or ftjob-… id).")

    def handle(self, *args, job, **options):
        ft = FineTuningJob.objects.select_related("parent_version").get(pk=job.removeprefix("ftjob-"))
        spec = {"base_model_path": ft.base_model_path, "output_dir": ft.output_dir, "method": ft.method,
                "hyperparameters": ft.hyperparameters, **_training_data(ft)}
        if ft.parent_version and ft.parent_version.adapter_path:
            spec["init_adapter_path"] = ft.parent_version.adapter_path
        self.stdout.write(json.dumps(spec, ensure_ascii=False))
