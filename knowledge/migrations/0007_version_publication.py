"""The append-only record of published versions (its constraints, trigger and backfill: 0008)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0006_chunkvector_visible_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='VersionPublication',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('published_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='published at')),
                ('document', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='publications', to='knowledge.document', verbose_name='document')),
                ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='publication', to='knowledge.documentversion', verbose_name='version')),
            ],
            options={
                'verbose_name': 'version publication',
                'verbose_name_plural': 'version publications',
                'indexes': [models.Index(fields=['document', 'version'], name='publication_document_version')],
            },
        ),
    ]
