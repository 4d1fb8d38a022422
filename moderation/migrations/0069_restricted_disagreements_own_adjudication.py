"""A disagreement of a queue restricted to groups, handed before to the default "Adjudication" queue (open to every
reviewer), moves to that queue's own adjudication queue, restricted to the same groups
(``review_queue_adjudication_for``): an item in the default queue, any status, opened the restricted video to every
moderator for good. Only where the queue it came from is certain (one restricted queue without an adjudication queue
of its own reviewed the decision) and the default queue is open to all; ``ReviewTask``'s count triggers move its
count with it."""

from typing import Any

from django.db import migrations

DEFAULT_SLUG = "adjudication"


def move_restricted_disagreements(apps: Any, schema_editor: Any) -> None:
    ReviewQueue = apps.get_model("moderation", "ReviewQueue")
    ReviewTask = apps.get_model("moderation", "ReviewTask")
    Review = apps.get_model("moderation", "Review")
    default = ReviewQueue.objects.filter(slug=DEFAULT_SLUG).first()
    if default is None or default.allowed_groups.exists():
        return
    for task in ReviewTask.objects.filter(queue=default, is_gold=False).order_by("pk"):
        reviewed_in = Review.objects.filter(decision_id=task.decision_id, task__is_gold=False).exclude(task_id=task.pk)
        origins = list(
            ReviewQueue.objects.filter(pk__in=reviewed_in.values("task__queue_id"), adjudication_queue__isnull=True)
            .exclude(pk=default.pk)
            .filter(allowed_groups__isnull=False)
            .distinct()
        )
        if len(origins) != 1:
            continue
        [origin] = origins
        own, created = ReviewQueue.objects.get_or_create(
            slug=f"{DEFAULT_SLUG}-{origin.pk}",
            defaults={
                "name": f"Adjudication · {origin.name}"[:200],
                "kind": origin.kind,
                "routes_new_decisions": False,
                "priority": 50,
            },
        )
        if created:
            own.allowed_groups.set(origin.allowed_groups.all())
        ReviewTask.objects.filter(pk=task.pk).update(queue=own)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0068_policy_plural_name"),
    ]

    operations = [migrations.RunPython(move_restricted_disagreements, migrations.RunPython.noop)]
