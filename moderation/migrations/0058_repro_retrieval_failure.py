import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0057_free_text_without_bidi_controls"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReproRetrievalFailure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("error", models.TextField()),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("failed_at", models.DateTimeField()),
                (
                    "video",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="moderation.video"
                    ),
                ),
            ],
        ),
    ]
