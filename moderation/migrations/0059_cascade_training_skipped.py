"""A stage-1 training skipped because another one was running is recorded as "skipped", not "failed"."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0058_repro_retrieval_failure"),
    ]

    operations = [
        migrations.AlterField(
            model_name="cascadetraining",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("done", "done"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                ],
                default="queued",
                max_length=10,
            ),
        ),
    ]
