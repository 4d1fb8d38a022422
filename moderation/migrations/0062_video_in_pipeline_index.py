"""The queue list's count of videos still on their way to the review queues (``review_videos_in_pipeline``) reads
this partial index: the few videos uploaded, processing, waiting for inference or failed, never the ready ones."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0061_queue_names_skips_taxonomies_without_bidi_controls"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="video",
            index=models.Index(
                condition=models.Q(status__in=["uploaded", "processing", "failed"])
                | models.Q(status="ready", stage="inference"),
                fields=["id"],
                name="video_in_pipeline",
            ),
        ),
    ]
