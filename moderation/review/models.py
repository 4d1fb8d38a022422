from __future__ import annotations

from django.conf import settings
from django.db import models


class ReviewTask(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"

    decision = models.OneToOneField("moderation.Decision", on_delete=models.CASCADE, related_name="review_task")
    queue = models.CharField(max_length=100, default="default", db_index=True)
    priority = models.IntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "created_at"]
        indexes = [models.Index(fields=["queue", "status", "-priority", "created_at"], name="task_claim_order")]


class Review(models.Model):
    """A human verdict. One per task: a double submit cannot record a second one."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve model verdict"
        OVERRIDE = "override", "Override label"

    task = models.OneToOneField(ReviewTask, on_delete=models.CASCADE, related_name="review")
    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    policy_version = models.ForeignKey("moderation.PolicyVersion", on_delete=models.PROTECT)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    label = models.CharField(max_length=100)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class ItemLabel(models.Model):
    """A trusted label for an item: from an imported benchmark or a human review.

    The cascade's stage-1 classifier and the evaluations learn from these.
    """

    class Source(models.TextChoices):
        IMPORT = "import", "Imported ground truth"
        REVIEW = "review", "Human review"

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="labels")
    label = models.CharField(max_length=100)
    source = models.CharField(max_length=20, choices=Source.choices)
    policy_version = models.ForeignKey("moderation.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "source"], name="one_label_per_video_source")]
