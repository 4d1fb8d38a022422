"""Reasons and notes labelers wrote for each other before ``workbench.text.shown_text`` (a correction's reject reason,
an adjudication's note) lose their invisible bidi controls once, as moderation's free text did in its 0056."""

from django.db import migrations
from django.db.models import Q

# As ``workbench.text`` drops them when this was written (a migration keeps its own copy).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_DROP = {ord(c): None for c in BIDI_CONTROLS}

TEXT_FIELDS = [("CotCorrection", "reject_reason"), ("Adjudication", "note")]


def strip_bidi_controls(apps, schema_editor):
    for name, field in TEXT_FIELDS:
        model = apps.get_model("annotation", name)
        holding = Q()
        for control in BIDI_CONTROLS:
            holding |= Q(**{f"{field}__contains": control})
        for row in model.objects.filter(holding).only("pk", field).iterator():
            model.objects.filter(pk=row.pk).update(**{field: getattr(row, field).translate(_DROP)})


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_list_window_indexes")]

    operations = [migrations.RunPython(strip_bidi_controls, migrations.RunPython.noop)]
