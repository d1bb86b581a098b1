"""Model versions keep the fingerprint of their files. A shipped default registered before
this cannot be told from a newer one that has since overwritten models/default: it gets
UNRECORDED, so the first use after the upgrade registers what the folder holds now."""

from django.conf import settings
from django.db import migrations, models

UNRECORDED = "unrecorded"


def mark_shipped_defaults(apps, schema_editor):
    ModelVersion = apps.get_model("modelops", "ModelVersion")
    ModelVersion.objects.filter(path=settings.DEFAULT_MODEL_NAME).update(fingerprint=UNRECORDED)


class Migration(migrations.Migration):
    dependencies = [
        ("modelops", "0005_model_stored_copy"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="fingerprint",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(mark_shipped_defaults, migrations.RunPython.noop),
    ]
