"""The trusted label of an item: what a human (or an imported benchmark) said a video is.

A wing of its own, below inference and review: review and adjudication write it, the KuaiMod import
writes it, and the cascade's stage 1, the evaluations and training read it.
"""

from __future__ import annotations

from django.db import models


class ItemLabel(models.Model):
    """A trusted label for an item: from an imported benchmark or a human review.

    The cascade's stage-1 classifier and the evaluations learn from these.
    """

    class Source(models.TextChoices):
        IMPORT = "import", "Imported ground truth"
        REVIEW = "review", "Human review"
        ADJUDICATION = "adjudication", "Adjudicated user-feedback disagreement"

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="labels")
    label = models.CharField(max_length=100)
    source = models.CharField(max_length=20, choices=Source.choices)
    policy_version = models.ForeignKey("moderation.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last change (a later review or adjudication rewrites the label): what pull sync (`/api/labels/?since=`) follows.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "source"], name="one_label_per_video_source")]
        indexes = [models.Index(fields=["updated_at", "id"], name="label_sync_order")]
