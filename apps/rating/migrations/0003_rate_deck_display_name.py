"""Rate decks keep a display name for customers: a name that was only the uploaded file's
name (the old default) is cleared, so the deck shows its currency and date instead."""

from typing import Any

from django.db import migrations, models
from django.db.models import F


def clear_file_names(apps: Any, schema_editor: Any) -> None:
    RateDeck = apps.get_model("rating", "RateDeck")
    RateDeck.objects.filter(import_job__isnull=False, name=F("import_job__filename")).update(name="")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("rating", "0002_seed_blocked_prefixes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ratedeck",
            name="name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(clear_file_names, migrations.RunPython.noop),
    ]
