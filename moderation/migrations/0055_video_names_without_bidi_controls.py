"""Video titles and file names stored before ``workbench.text.shown_name`` lose their invisible bidi controls once,
so an old name no longer displays as something it is not (new ones are stored without them)."""

from django.db import migrations
from django.db.models import Q

# As ``workbench.text.shown_name`` drops them when this was written (a migration keeps its own copy).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def shown_name(value):
    return value.translate({ord(c): None for c in BIDI_CONTROLS})


def strip_bidi_controls(apps, schema_editor):
    Video = apps.get_model("moderation", "Video")
    holding = Q()
    for control in BIDI_CONTROLS:
        holding |= Q(title__contains=control) | Q(original_filename__contains=control)
    for video in Video.objects.filter(holding).only("pk", "title", "original_filename").iterator():
        Video.objects.filter(pk=video.pk).update(
            title=shown_name(video.title), original_filename=shown_name(video.original_filename)
        )


class Migration(migrations.Migration):
    dependencies = [("moderation", "0054_video_error_kind_damaged")]

    operations = [migrations.RunPython(strip_bidi_controls, migrations.RunPython.noop)]
