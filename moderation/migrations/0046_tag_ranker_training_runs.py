# A record of each tag-ranker training run, and a version number per ranker ("ranked by ranker v3").

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def number_rankers(apps, schema_editor):  # type: ignore[no-untyped-def]
    """The rankers trained so far get versions 1, 2, … in the order they were made."""
    TagRanker = apps.get_model("moderation", "TagRanker")
    for number, pk in enumerate(TagRanker.objects.order_by("pk").values_list("pk", flat=True), start=1):
        TagRanker.objects.filter(pk=pk).update(version=number)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0045_list_window_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="tagranker",
            name="version",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.RunPython(number_rankers, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="tagranker",
            name="version",
            field=models.PositiveIntegerField(unique=True),
        ),
        migrations.CreateModel(
            name="TagRankerTraining",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("error", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "queued"),
                            ("running", "running"),
                            ("done", "succeeded"),
                            ("failed", "failed"),
                            ("skipped", "skipped: not enough events"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[
                            ("page", "the ranker page"),
                            ("command", "manage.py train_tag_ranker"),
                            ("beat", "beat (hourly)"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "message_id",
                    models.CharField(blank=True, help_text="the beat message's Celery task id", max_length=255),
                ),
                ("min_events", models.PositiveIntegerField(help_text="usable events the learned ranker needs")),
                (
                    "n_events",
                    models.PositiveIntegerField(default=0, help_text="usable events (the latest per video and tag)"),
                ),
                ("n_videos", models.PositiveIntegerField(default=0)),
                ("positives", models.PositiveIntegerField(default=0, help_text="of the events, accepts and adds")),
                ("heldout_videos", models.PositiveIntegerField(default=0)),
                ("heldout_p_at_5", models.FloatField(blank=True, null=True)),
                (
                    "heldout_weighted_p_at_5",
                    models.FloatField(blank=True, help_text="the weighted sum, same videos", null=True),
                ),
                (
                    "heldout_note",
                    models.CharField(blank=True, help_text="why there is no held-out score", max_length=300),
                ),
                ("reason", models.CharField(blank=True, help_text="why it was skipped", max_length=500)),
                ("classifiers", models.PositiveIntegerField(default=0, help_text="per-tag classifiers trained")),
                (
                    "ranker",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="trainings",
                        to="moderation.tagranker",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("message_id", ""), _negated=True),
                        fields=("message_id",),
                        name="one_ranker_training_per_message",
                    )
                ],
            },
        ),
    ]
