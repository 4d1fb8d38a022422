import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Exists, OuterRef


def awaited_items_from_routing_log(apps, schema_editor):  # type: ignore[no-untyped-def]
    """The items routing owed queues that name their own model and that were not made yet, as routing's audit
    events name them (``queues_for_other_models``): their queue-model tasks may still be queued, and now find
    what they owe. Then ``Video.routed_restricted`` says only that such an item is awaited by a restricted queue:
    a flag left on a video whose restricted queue's item exists changed nothing (the rule ignores it), and is
    cleared; one whose queue is gone or never takes the item stays, for the routing repair
    (``manage.py repair_routing``, the ops page) to route the video again."""
    audit_event = apps.get_model("moderation", "AuditEvent")
    decision_model = apps.get_model("moderation", "Decision")
    queue_model = apps.get_model("moderation", "ReviewQueue")
    task_model = apps.get_model("moderation", "ReviewTask")
    awaited_model = apps.get_model("moderation", "AwaitedQueueItem")
    video_model = apps.get_model("moderation", "Video")
    events = audit_event.objects.filter(
        action="decision.routed", object_type="decision", payload__has_key="queues_for_other_models"
    ).exclude(payload__queues_for_other_models=[])
    queues = dict(queue_model.objects.values_list("slug", "pk"))
    rows = []
    for object_id, payload in events.values_list("object_id", "payload").iterator():
        decision = decision_model.objects.filter(pk=int(object_id)).first() if object_id.isdigit() else None
        if decision is None:
            continue
        for slug in payload["queues_for_other_models"]:
            made = task_model.objects.filter(
                queue_id=queues.get(slug),
                decision__video_id=decision.video_id,
                decision__policy_version_id=decision.policy_version_id,
                is_gold=False,
            )
            if slug in queues and not made.exists():
                rows.append(awaited_model(decision_id=decision.pk, queue_id=queues[slug]))
    awaited_model.objects.bulk_create(rows, ignore_conflicts=True)
    made_restricted = task_model.objects.filter(
        decision__video_id=OuterRef("pk"), queue__allowed_groups__isnull=False
    ).exclude(queue__kind="tags")
    awaited_restricted = awaited_model.objects.filter(
        decision__video_id=OuterRef("pk"), queue__allowed_groups__isnull=False
    )
    video_model.objects.filter(routed_restricted=True).filter(Exists(made_restricted)).exclude(
        Exists(awaited_restricted)
    ).update(routed_restricted=False)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0040_video_routed_restricted"),
    ]

    operations = [
        migrations.CreateModel(
            name="AwaitedQueueItem",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "decision",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="moderation.decision"
                    ),
                ),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="awaited_items",
                        to="moderation.reviewqueue",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("decision", "queue"), name="one_awaited_item_per_queue")
                ],
            },
        ),
        migrations.RunPython(awaited_items_from_routing_log, migrations.RunPython.noop),
    ]
