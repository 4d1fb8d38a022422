"""The version a policy draft was started from (``PolicyVersion.based_on``), so publishing can tell when the active
version moved on since, and the note a publish over such an active version leaves (``publish_note``).

The drafts saved before this never recorded their starting point. Each gets the newest version of its policy that
is published and numbered below it: the editor opens the active version unless told otherwise, and a version
published after the draft was saved has a higher number, so a draft older than the active version reads as started
before it and its publish asks for the confirmation. Published versions keep no starting point (nothing checks it
once they are published). One UPDATE."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill_draft_bases(apps, schema_editor):  # type: ignore[no-untyped-def]
    version = apps.get_model("moderation", "PolicyVersion")
    newest_published_below = (
        version.objects.filter(policy_id=OuterRef("policy_id"), status="published", number__lt=OuterRef("number"))
        .order_by("-number")
        .values("pk")[:1]
    )
    version.objects.filter(status="draft", based_on__isnull=True).update(based_on=Subquery(newest_published_below))


class Migration(migrations.Migration):
    dependencies = [("moderation", "0035_video_error_for_sender")]

    operations = [
        migrations.AddField(
            model_name="policyversion",
            name="based_on",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to="moderation.policyversion",
                verbose_name="started from",
            ),
        ),
        migrations.AddField(model_name="policyversion", name="publish_note", field=models.TextField(blank=True)),
        migrations.RunPython(backfill_draft_bases, migrations.RunPython.noop),
    ]
