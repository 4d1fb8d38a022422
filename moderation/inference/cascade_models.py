from __future__ import annotations

from datetime import timedelta

from django.db import models

from workbench.jobs import BackgroundJob


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


class CascadeTrainingStatus(models.TextChoices):
    """A background job's states, and "skipped": another stage-1 training was running, so this one trained
    nothing and changed nothing (not an error; see ``CASCADE_TRAINING_BUSY``)."""

    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"


class CascadeTraining(BackgroundJob):
    """One request to (re)train stage 1: from the dashboard's button or from beat, run by the
    ``train_cascade`` task on the default queue, never inside the web request.

    At most one is queued or running at a time (``cascade_training_request`` serialises requests): a
    double click, a second tab or a beat tick during a training gets the open one back, not a second
    training. The dashboard shows the latest one's state and, when it failed, why.
    """

    class Trigger(models.TextChoices):
        BUTTON = "button", "the dashboard"
        BEAT = "beat", "beat (new labels)"

    # RESEND_AFTER: BackgroundJob's. Running with no result this long: its worker died (Redis redelivers only after the visibility
    # timeout, hours later). It is marked failed and a new request may start; a late finish of the old
    # one no longer writes its state.
    STALLED_AFTER = timedelta(hours=1)

    Status = CascadeTrainingStatus  # type: ignore[assignment]
    status = models.CharField(
        max_length=10, choices=CascadeTrainingStatus.choices, default=CascadeTrainingStatus.QUEUED
    )
    name = models.CharField(max_length=100)
    threshold = models.FloatField(null=True, blank=True)
    target_accuracy = models.FloatField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.BUTTON)
    model = models.ForeignKey(CascadeModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    trained_on = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The backstop of the service's lock: never two queued or two running.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_open_cascade_training",
            )
        ]

    def __str__(self) -> str:
        return f"stage-1 training {self.pk} ({self.name}): {self.status}"
