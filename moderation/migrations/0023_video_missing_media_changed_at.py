from django.db import migrations, models


class Migration(migrations.Migration):
    """``missing_media_checked_at`` was written only when the missing set changed: say so in its name."""

    dependencies = [
        ("moderation", "0022_video_missing_media"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="video", name="video_missing_media"),
        migrations.RenameField(
            model_name="video",
            old_name="missing_media_checked_at",
            new_name="missing_media_changed_at",
        ),
        migrations.AddIndex(
            model_name="video",
            index=models.Index(
                condition=~models.Q(missing_media=[]), fields=["missing_media_changed_at"], name="video_missing_media"
            ),
        ),
    ]
