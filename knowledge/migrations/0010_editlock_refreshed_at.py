import django.utils.timezone
from django.db import migrations, models


def copy_acquired_at(apps, schema_editor):
    EditLock = apps.get_model("knowledge", "EditLock")
    EditLock.objects.update(refreshed_at=models.F("acquired_at"))


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0009_merge_20261201_2315")]

    operations = [
        migrations.AddField(
            model_name="editlock",
            name="refreshed_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(copy_acquired_at, migrations.RunPython.noop),
    ]
