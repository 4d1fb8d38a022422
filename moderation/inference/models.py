from __future__ import annotations

from django.db import models


class ModelVersion(models.Model):
    """A model that can make decisions: a backend plus (for VLMs) a base model and an adapter."""

    class Backend(models.TextChoices):
        EVIDENCE_BASELINE = "evidence_baseline", "Evidence/rule baseline (not a VLM)"
        TRANSFORMERS = "transformers", "transformers"
        VLLM = "vllm", "vLLM"
        CASCADE_STAGE1 = "cascade_stage1", "Cascade stage 1 (text classifier)"

    name = models.CharField(max_length=200, unique=True)
    backend = models.CharField(max_length=40, choices=Backend.choices)
    base_model = models.CharField(max_length=500, blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    source_job_id = models.BigIntegerField(null=True, blank=True, help_text="training job that produced it")
    is_serving = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Decision(models.Model):
    """What a model decided about a video, pinned to the policy and model version it used.

    ``cot`` is a list of stages ``{"key", "title", "text", "evidence": [{"kind", "ref", "label"}]}``.
    """

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="decisions")
    policy_version = models.ForeignKey("moderation.PolicyVersion", on_delete=models.PROTECT)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    backend = models.CharField(max_length=40)
    label = models.CharField(max_length=100, blank=True)
    is_violation = models.BooleanField(default=False)
    confidence = models.FloatField(default=0.0)
    # BLM-Guard's other two levels (risk scene → violation type → severity); empty for KuaiMod output.
    scene = models.CharField(max_length=100, blank=True)
    severity = models.CharField(max_length=20, blank=True)
    cot = models.JSONField(default=list)
    raw_output = models.TextField(blank=True)
    parse_error = models.TextField(blank=True)
    latency_ms = models.FloatField(default=0.0)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    # The COEF-VQ cascade: 1 = decided by the stage-1 classifier, 2 = escalated to the serving model,
    # empty = no cascade model was active.
    cascade_stage = models.PositiveSmallIntegerField(null=True, blank=True)
    cascade_uncertainty = models.FloatField(null=True, blank=True)
    cascade_escalated = models.BooleanField(default=False)
    # Stage 1's calibrated P(violative) for this item, whichever stage decided it: with the item's
    # trusted label it gives the risk–coverage curve of stage 1 on reviewed traffic.
    cascade_p_violative = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["video", "policy_version", "model_version"], name="one_decision_per_video_policy_model"
            )
        ]

    def __str__(self) -> str:
        return f"decision {self.pk}: {self.label or 'unparsed'}"
