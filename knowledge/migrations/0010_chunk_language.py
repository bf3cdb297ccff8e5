from django.db import migrations, models


def backfill(apps, schema_editor):
    """Existing chunks get their language by the rule new ones get it at ingestion."""
    from retrieval.tokenize import language

    Chunk = apps.get_model("knowledge", "Chunk")
    batch = []
    for chunk in Chunk.objects.only("pk", "text").iterator(chunk_size=2000):
        chunk.language = language(chunk.text)
        batch.append(chunk)
        if len(batch) == 2000:
            Chunk.objects.bulk_update(batch, ["language"])
            batch = []
    if batch:
        Chunk.objects.bulk_update(batch, ["language"])


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0009_merge_20261201_2315")]

    operations = [
        migrations.AddField(
            model_name="chunk", name="language", field=models.CharField(blank=True, db_default="", default="", max_length=8),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
