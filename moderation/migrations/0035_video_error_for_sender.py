"""Whether a video's failure text was written for whoever sent it (``Video.error_for_sender``), recorded where the
failure is, instead of judged by its opening words when a platform reads it (``video_error_for``).

The rows failed before this get the flag once by the rule the reader used until now (the sender's messages began
with these words), in one UPDATE; from here on the pipeline sets it (``SenderError``)."""

from django.db import migrations, models
from django.db.models import Q

# The opening words of the media pipeline's messages for a sender, as ``video_error_for`` matched them until now.
SENDER_PREFIXES = ("This file ", "This video ", "The uploaded file ", "Extracting keyframes ")


def flag_sender_errors(apps, schema_editor):  # type: ignore[no-untyped-def]
    video = apps.get_model("moderation", "Video")
    written_for_sender = Q()
    for prefix in SENDER_PREFIXES:
        written_for_sender |= Q(error__startswith=prefix)
    video.objects.filter(written_for_sender).update(error_for_sender=True)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0034_vector_sweep")]

    operations = [
        migrations.AddField(model_name="video", name="error_for_sender", field=models.BooleanField(default=False)),
        migrations.RunPython(flag_sender_errors, migrations.RunPython.noop),
    ]
