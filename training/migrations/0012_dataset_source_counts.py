"""Each dataset keeps how many of its records each source gave (``source_counts``), counted by its build; the
datasets built before get theirs once, here, from their stored pairs and records."""

from django.db import migrations, models
from django.db.models import Count


def count_sources(apps, schema_editor):
    Dataset = apps.get_model("training", "PreferenceDataset")
    counts: dict[int, dict[str, int]] = {}
    for name in ("PreferencePair", "SftRecord"):
        rows = apps.get_model("training", name).objects.values("dataset_id", "source").annotate(n=Count("pk"))
        for row in rows.order_by("dataset_id", "source"):
            counts.setdefault(row["dataset_id"], {})[row["source"]] = row["n"]
    for dataset_id, sources in counts.items():
        Dataset.objects.filter(pk=dataset_id).update(source_counts=sources)


class Migration(migrations.Migration):
    dependencies = [("training", "0011_tag2cot_source")]

    operations = [
        migrations.AddField(
            model_name="preferencedataset",
            name="source_counts",
            field=models.JSONField(blank=True, default=dict, help_text="records per source: {source: count}"),
        ),
        migrations.RunPython(count_sources, migrations.RunPython.noop),
    ]
