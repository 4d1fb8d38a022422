"""A tag set's description is a line of at most 500 characters (it was unbounded: 1 MB was saved and shown on
the vocabulary screen). A longer one already stored keeps its first 500 characters, so the column can change."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0029_drop_keyframe_embedding_hnsw"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE moderation_tagset SET description = left(description, 500) WHERE length(description) > 500",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="tagset",
            name="description",
            field=models.CharField(blank=True, max_length=500),
        ),
    ]
