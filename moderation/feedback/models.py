"""User feedback from the platform: integrations that report it, the raw events, per-video aggregates."""

from __future__ import annotations

from django.db import models

from moderation.integrations.models import Integration

__all__ = ["FeedbackAggregate", "FeedbackEvent", "Integration"]


class FeedbackEvent(models.Model):
    """One platform event about a video. ``(integration, event_id)`` is unique: a resent batch is harmless."""

    class Kind(models.TextChoices):
        REPORT = "report", "Report"
        DISLIKE = "dislike", "Dislike"
        LIKE = "like", "Like"
        APPEAL = "appeal", "Appeal"
        SHARE = "share", "Share"
        WATCH_TIME = "watch_time", "Watch time"

    class AppealOutcome(models.TextChoices):
        PENDING = "pending", "Pending"
        UPHELD = "upheld", "Upheld (the moderation stands)"
        OVERTURNED = "overturned", "Overturned (the appeal succeeded)"

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="events")
    event_id = models.CharField(max_length=200)
    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="feedback_events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, help_text="report reason")
    seconds = models.FloatField(null=True, blank=True, help_text="watch_time only")
    # Appeals: the platform's appeal id (several events can follow one appeal: filed, then decided);
    # the latest event of an appeal carries its outcome.
    appeal_id = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=20, choices=AppealOutcome.choices, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "event_id"], name="one_feedback_event_per_integration_id")
        ]
        indexes = [models.Index(fields=["video", "kind"], name="feedback_video_kind")]


class FeedbackAggregate(models.Model):
    """Per-video feedback counts, recomputed from the events after every ingest batch (a cache of
    ``moderation.feedback.selectors.feedback_stats_compute``)."""

    video = models.OneToOneField("moderation.Video", on_delete=models.CASCADE, related_name="feedback_aggregate")
    views = models.PositiveIntegerField(default=0)
    watch_seconds = models.FloatField(default=0.0)
    reports = models.PositiveIntegerField(default=0)
    likes = models.PositiveIntegerField(default=0)
    dislikes = models.PositiveIntegerField(default=0)
    shares = models.PositiveIntegerField(default=0)
    appeals = models.PositiveIntegerField(default=0)
    appeals_pending = models.PositiveIntegerField(default=0)
    appeals_upheld = models.PositiveIntegerField(default=0)
    appeals_overturned = models.PositiveIntegerField(default=0)
    top_report_reasons = models.JSONField(default=list, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
