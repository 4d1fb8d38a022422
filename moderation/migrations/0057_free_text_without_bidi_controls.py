"""Free text stored before ``workbench.text.shown_text`` (viewer comments, descriptions, reviewers' and pair notes,
policy names, version notes) loses its invisible bidi controls once, as titles did in 0055, so old text no longer
displays as something it does not say (new text is stored without them)."""

from django.db import migrations
from django.db.models import Q, TextField
from django.db.models.functions import Cast

# As ``workbench.text`` drops them when this was written (a migration keeps its own copy).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_DROP = {ord(c): None for c in BIDI_CONTROLS}

# (model, text fields) of the moderation app; Video.comments (a JSON list of strings) is done apart.
TEXT_FIELDS = [
    ("Video", ["description"]),
    ("Review", ["note"]),
    ("PairReview", ["note"]),
    ("Policy", ["name"]),
    ("PolicyVersion", ["notes", "publish_note"]),
]


def _holding(fields):
    holding = Q()
    for control in BIDI_CONTROLS:
        for field in fields:
            holding |= Q(**{f"{field}__contains": control})
    return holding


def strip_bidi_controls(apps, schema_editor):
    for name, fields in TEXT_FIELDS:
        model = apps.get_model("moderation", name)
        for row in model.objects.filter(_holding(fields)).only("pk", *fields).iterator():
            model.objects.filter(pk=row.pk).update(**{f: getattr(row, f).translate(_DROP) for f in fields})
    Video = apps.get_model("moderation", "Video")
    videos = Video.objects.annotate(comments_text=Cast("comments", TextField()))
    for video in videos.filter(_holding(["comments_text"])).only("pk", "comments").iterator():
        comments = [c.translate(_DROP) if isinstance(c, str) else c for c in video.comments]
        Video.objects.filter(pk=video.pk).update(comments=comments)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0056_one_serving_model")]

    operations = [migrations.RunPython(strip_bidi_controls, migrations.RunPython.noop)]
