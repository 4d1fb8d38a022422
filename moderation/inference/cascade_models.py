from __future__ import annotations

from django.db import models


class CascadeModel(models.Model):
    """A trained stage-1 classifier of the cascade: where its artifact is, what it scored, how it routes.

    At most one is active; the active one decides confident items and escalates the rest.
    """

    name = models.CharField(max_length=100, unique=True)
    artifact_path = models.CharField(max_length=500)
    labels = models.JSONField(default=list, help_text="output columns, the safe label first")
    metrics = models.JSONField(default=dict, blank=True)
    escalate_threshold = models.FloatField(help_text="normalised binary entropy above which items go to stage 2")
    target_accuracy = models.FloatField(
        null=True, blank=True, help_text="the accuracy the auto-decided items should reach; sets the threshold"
    )
    label_watermark = models.DateTimeField(
        null=True, blank=True, help_text="newest trusted label it was trained on (beat retrains after newer ones)"
    )
    trained_on = models.PositiveIntegerField(default=0, help_text="labelled items it was trained on")
    policy_version = models.ForeignKey("moderation.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT)
    trained_at = models.DateTimeField(auto_now=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-trained_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_cascade_model"
            )
        ]

    def __str__(self) -> str:
        return self.name
