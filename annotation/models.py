from __future__ import annotations

from django.conf import settings
from django.db import models


class CotCorrection(models.Model):
    """A labeler's corrected chain-of-thought for one model decision, stored beside the original.

    ``revision`` increases on every save; a save must name the revision it was based on, so two
    labelers cannot silently overwrite each other.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    decision = models.OneToOneField("moderation.Decision", on_delete=models.CASCADE, related_name="correction")
    stages = models.JSONField(default=list)
    label = models.CharField(max_length=100)
    diff = models.JSONField(default=list, help_text="per-stage changes against the model's CoT")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    revision = models.PositiveIntegerField(default=1)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("correct_cot", "Can correct model chain-of-thought")]

    def __str__(self) -> str:
        return f"correction of decision {self.decision_id} (rev {self.revision})"
