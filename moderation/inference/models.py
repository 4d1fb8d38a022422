from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models

from workbench.jobs import BackgroundJob
from workbench.queues import INFER_ITEM_TIME_LIMIT_S


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

    class Meta:
        # The globally serving model is one row or none (``model_version_promote``); a policy's own model is
        # ``Policy.serving_model``.
        constraints = [
            models.UniqueConstraint(
                fields=["is_serving"], condition=models.Q(is_serving=True), name="one_serving_model"
            )
        ]

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
    # Tokens of the item's content cut from the prompt to fit the model's context (0: the model read it all).
    prompt_cut_tokens = models.PositiveIntegerField(default=0)
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
        # The API's pull-sync order (oldest first, ``?since=``): ``WindowCursorPagination`` reads its window from it.
        indexes = [models.Index(fields=["created_at", "id"], name="decision_created_order")]

    def __str__(self) -> str:
        # Ids only: the admin names a chosen decision this way, and a title would be a query per row.
        return f"decision {self.pk} of video {self.video_id}: {self.label or 'unparsed'}"


class DecisionRerun(BackgroundJob):
    """The decision's own model run again on the item as it is now, asked for from the review screen when
    user feedback arrived after the decision (stage 4 of its CoT no longer knows it).

    The decision itself never changes: reviews, CoT corrections and training data refer to what the model
    said when it decided. The review screen shows the latest finished re-run's reasoning in its place
    (``review_cot_for_display``). At most one re-run per decision is queued or running at a time.
    """

    # RESEND_AFTER: BackgroundJob's. A re-run "running" with no progress this long after it started (or was last sent) lost its worker
    # (killed mid-run: Redis would redeliver only after the visibility timeout, hours later): the task's
    # hard time limit plus a margin. It is shown stalled and may be sent again; of two deliveries only the
    # first to finish writes (services._rerun_finish).
    STALLED_AFTER = timedelta(seconds=INFER_ITEM_TIME_LIMIT_S) + timedelta(minutes=5)

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="reruns")
    # What the re-run's prompt knew of the user feedback: the statistics, and the latest event among them.
    feedback = models.JSONField(default=dict, blank=True)
    feedback_seen_until = models.DateTimeField(null=True, blank=True)
    label = models.CharField(max_length=100, blank=True)
    is_violation = models.BooleanField(default=False)
    confidence = models.FloatField(default=0.0)
    scene = models.CharField(max_length=100, blank=True)
    severity = models.CharField(max_length=20, blank=True)
    cot = models.JSONField(default=list, blank=True)
    raw_output = models.TextField(blank=True)
    parse_error = models.TextField(blank=True)
    latency_ms = models.FloatField(default=0.0)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    # Tokens of the item's content cut from the prompt to fit the model's context (0: the model read it all).
    prompt_cut_tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["decision"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_open_rerun_per_decision",
            )
        ]

    def __str__(self) -> str:
        return f"re-run {self.pk} of decision {self.decision_id}: {self.status}"


class KeptVerdict(models.Model):
    """One policy's model answer on a video from a run that saved nothing, because another policy's model failed
    (a run's decisions are saved and routed together: ``decisions_create_for_video``). The retry reuses it
    instead of running that model again, but only for the same input: ``fingerprint`` hashes what the models
    read of the video (title, speech, frames, on-screen text, user feedback), the policy version and the
    deciding models' identities, so a changed video, feedback or model runs again. The run that saves the
    video's decisions deletes its kept answers in the same transaction."""

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="+")
    policy_version = models.ForeignKey("moderation.PolicyVersion", on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)
    # {"model_version": the deciding model's id (stage 1 or the serving model), "result": the BackendResult's
    # fields, "latency_ms", "cascade": the cascade fields a Decision stores}
    answer = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "policy_version", "fingerprint"], name="one_kept_verdict")
        ]

    def __str__(self) -> str:
        return f"kept verdict of video {self.video_id} under policy version {self.policy_version_id}"


class MissingDecisionRepair(models.Model):
    """The routing repair's tries at deciding a decided video under the auto-applied policies it lacks a decision
    under (``decide_missing_policies`` on the infer queue). Queued: ``queued_at`` later than any failure; a try
    that failed records why (``error``, ``failed_at``, ``attempts`` counts the failures). The repair queues a video
    again only after a failure, and not once it has failed ``MAX_ATTEMPTS`` times: the ops page lists those with
    their error and a Retry button, so a video whose model keeps failing is not queued at every click for good.
    A queued try never answered (a lost task) is queued again after ``QUEUED_FOR``. Deleted once the video lacks
    nothing.

    An operator may dismiss one (``dismissed_at``, ``dismissed_by``): e.g. a video whose missing policy's model
    can never read it. A dismissed video is neither queued by the repair nor counted among the half-decided
    videos to repair; the ops page lists it under its "dismissed" filter, where Retry queues it again (and
    clears the dismissal)."""

    MAX_ATTEMPTS = 3
    QUEUED_FOR = timedelta(hours=6)  # CELERY_VISIBILITY_TIMEOUT's default: a task not run by then was lost

    video = models.OneToOneField("moderation.Video", on_delete=models.CASCADE, related_name="+")
    queued_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"missing decisions of video {self.video_id}"

    @property
    def failed_last(self) -> bool:
        return self.failed_at is not None and self.failed_at >= self.queued_at

    @property
    def given_up(self) -> bool:
        return self.failed_last and self.attempts >= self.MAX_ATTEMPTS and self.dismissed_at is None


class ImpactPreviewRun(models.Model):
    """A draft's impact preview as computed (``moderation.inference.impact``), kept so the version page and its
    publish step show it again without re-running the model on the whole sample each time they are opened.

    Keyed by ``content_hash`` (the draft's taxonomy and settings with those of the active version it is compared
    against: a changed draft, or another active version's content, is another key; a run is shown only while its
    ``active`` is the active version, so a stale result is never shown as this one's), ``model_version`` (the backend that ran and its code's digest) and ``sample_size``. ``result`` keeps every
    flip by video id, never a title, with the label counts; who may see which flipped video is decided when it is
    shown (``videos_open_to``). ``latest_decision_id``: the newest decision under the policy then, so the page can
    say that items were decided since."""

    policy = models.ForeignKey("moderation.Policy", on_delete=models.CASCADE, related_name="+")
    content_hash = models.CharField(max_length=64)
    model_version = models.CharField(max_length=100)
    sample_size = models.PositiveIntegerField()
    draft = models.ForeignKey("moderation.PolicyVersion", on_delete=models.CASCADE, related_name="+")
    active = models.ForeignKey("moderation.PolicyVersion", on_delete=models.CASCADE, related_name="+")
    result = models.JSONField(default=dict)
    latest_decision_id = models.BigIntegerField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_hash", "model_version", "sample_size"], name="uniq_impact_preview_run"
            )
        ]

    def __str__(self) -> str:
        return f"impact of {self.content_hash[:12]} ({self.model_version}, {self.sample_size} items)"
