from django.db import migrations, models
from django.db.models import Exists, OuterRef


def drop_open_tag_items_of_restricted_videos(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Unworked items in a tags queue open to all, of videos otherwise only in group-restricted queues: such an
    item made the video visible to every moderator (tags items made before routing's restriction was known, or
    before tag suggestions skipped restricted videos). Its queue's groups tag it from its review screen. Worked
    items (done, escalated) are left: they hold who tagged it."""
    review_task = apps.get_model("moderation", "ReviewTask")
    items = review_task.objects.filter(decision__video_id=OuterRef("decision__video_id"))
    restricted = items.filter(queue__allowed_groups__isnull=False)
    open_elsewhere = items.filter(queue__allowed_groups__isnull=True).exclude(queue__kind="tags")
    review_task.objects.filter(
        queue__kind="tags", queue__allowed_groups__isnull=True, status__in=["pending", "claimed"], is_gold=False
    ).filter(Exists(restricted), ~Exists(open_elsewhere)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0039_decision_prompt_cut_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="video",
            name="routed_restricted",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(drop_open_tag_items_of_restricted_videos, migrations.RunPython.noop),
    ]
