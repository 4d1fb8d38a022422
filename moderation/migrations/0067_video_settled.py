# The videos out of the media pipeline by id, read from the index alone by the ops page's half-decided check
# (``moderation.inference.selectors.videos_missing_auto_decision``): it walked the table's wide rows.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0066_videotagstate_tries"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="video",
            index=models.Index(
                condition=models.Q(("status__in", ["uploaded", "processing"]), _negated=True),
                fields=["id"],
                name="video_settled",
            ),
        ),
    ]
