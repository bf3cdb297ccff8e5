"""List the dataset versions holding chat feedback that their department may not hold today.

Feedback datasets built before the eighth session took every department's feedback, so a
department's admins could read other departments' conversations in them. Run once after upgrading;
a listed version can be rebuilt from feedback (which now takes the department's own only) and the
dataset's readers told. The last line is JSON."""

import json

from django.core.management.base import BaseCommand

from training.selectors_datasets import feedback_rows_outside_their_department


class Command(BaseCommand):
    help = "List dataset versions holding chat feedback from outside their department (feedback datasets built before the fix)."

    def handle(self, *args, **options):
        found = feedback_rows_outside_their_department()
        for entry in found:
            self.stdout.write(
                f"dataset {entry['dataset']} \"{entry['name']}\" ({entry['department']}) v{entry['version']}: "
                f"{entry['rows_outside']} of {entry['rows']} rows from feedback outside the department")
        if not found:
            self.stdout.write("No dataset version holds feedback from outside its department.")
        self.stdout.write(json.dumps({"versions": found}, ensure_ascii=False))
