from __future__ import annotations

from django.conf import settings
from django.db import models


class PreferenceDataset(models.Model):
    """A snapshot of DPO preference pairs built from human overrides and corrections."""

    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    jsonl_path = models.CharField(max_length=500, blank=True)
    pair_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_training", "Can build datasets and launch training")]

    def __str__(self) -> str:
        return self.name


class PreferencePair(models.Model):
    class Source(models.TextChoices):
        OVERRIDE = "override", "Reviewer override"
        CORRECTION = "correction", "Labeler CoT correction"

    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.CASCADE, related_name="pairs")
    decision = models.ForeignKey("moderation.Decision", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    prompt = models.TextField()
    chosen = models.TextField()
    rejected = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "decision"], name="one_pair_per_decision")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} pair for decision {self.decision_id}"


class TrainingJob(models.Model):
    class Kind(models.TextChoices):
        DPO = "dpo", "DPO (TRL DPOTrainer + LoRA)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DPO)
    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.PROTECT, related_name="jobs")
    base_model = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, help_text="[{step, loss}] as logged")
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    model_version = models.ForeignKey(
        "moderation.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk} ({self.status})"
