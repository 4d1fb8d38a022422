from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0024_framehash_drop_chunk_columns"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tagcandidate",
            name="source",
            field=models.CharField(
                choices=[
                    ("text", "Text match"),
                    ("embedding", "Embedding zero-shot"),
                    ("similar", "Similar videos"),
                    ("classifier", "Per-tag classifier"),
                    ("vlm", "VLM free text"),
                    ("related", "Related tags"),
                ],
                max_length=20,
            ),
        ),
    ]
