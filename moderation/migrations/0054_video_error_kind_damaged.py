"""A damaged video (``Video.ErrorKind.DAMAGED``): a real video whose pictures ffmpeg cannot decode, the same bytes
failing every time, so it is dismissed, not retried.

Failures recorded before have no kind: the keyframe stage's refusals of undecodable bytes were written for the
sender with two fixed openings, so those rows are marked here once; from now on the kind is recorded where the
failure happens (``DamagedVideoError``), never read from the text."""

from django.db import migrations, models
from django.db.models import Q

# The openings of the messages ``extract_frames`` wrote for undecodable bytes before this migration.
DAMAGED_OPENINGS = ("This video is incomplete:", "This video is damaged or incomplete:")


def mark_damaged(apps, schema_editor):
    Video = apps.get_model("moderation", "Video")
    openings = Q()
    for opening in DAMAGED_OPENINGS:
        openings |= Q(error__startswith=opening)
    Video.objects.filter(openings, status="failed", error_kind="", error_for_sender=True).update(error_kind="damaged")


class Migration(migrations.Migration):
    dependencies = [("moderation", "0053_video_error_kind")]

    operations = [
        migrations.AlterField(
            model_name="video",
            name="error_kind",
            field=models.CharField(
                blank=True,
                choices=[("", "Other"), ("not_video", "Not a video"), ("damaged", "Damaged video")],
                default="",
                max_length=20,
            ),
        ),
        migrations.RunPython(mark_damaged, migrations.RunPython.noop),
    ]
