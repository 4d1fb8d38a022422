"""Tag2CoT tasks closed by an accepted correction of the same decision: a ``superseded`` status and the correction
that closed it. Open tasks whose decision has an accepted correction already are closed once, here."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def close_superseded(apps, schema_editor):
    Task = apps.get_model("annotation", "Tag2CotTask")
    Correction = apps.get_model("annotation", "CotCorrection")
    accepted = Correction.objects.filter(decision_id=OuterRef("decision_id"), status="accepted")
    Task.objects.filter(status="open").filter(models.Exists(accepted)).update(
        status="superseded",
        superseded_by=Subquery(accepted.values("pk")[:1]),
        lease_expires_at=None,
    )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0005_notes_without_bidi_controls")]

    operations = [
        migrations.AlterField(
            model_name="tag2cottask",
            name="status",
            field=models.CharField(
                choices=[("open", "Open"), ("done", "Done"), ("superseded", "Superseded by a correction")],
                default="open",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="tag2cottask",
            name="superseded_by",
            field=models.ForeignKey(
                blank=True,
                help_text="the accepted correction that closed this task (status superseded)",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="superseded_tag2cot_tasks",
                to="annotation.cotcorrection",
            ),
        ),
        migrations.RunPython(close_superseded, migrations.RunPython.noop),
    ]
