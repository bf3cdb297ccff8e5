from django.db import migrations


def create_default(apps, schema_editor):
    Assistant = apps.get_model("chat", "Assistant")
    if not Assistant.objects.filter(is_default=True).exists():
        Assistant.objects.create(
            name="Company assistant",
            description="Answers from every knowledge base you may read.",
            is_default=True,
        )


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]
    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
