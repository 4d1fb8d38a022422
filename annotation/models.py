from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class CotCorrection(models.Model):
    """A labeler's corrected chain-of-thought for one model decision, stored beside the original.

    ``revision`` increases on every save; a save must name the revision it was based on, so two
    labelers cannot silently overwrite each other.

    Lifecycle: draft → submitted → accepted (by a labeler other than the author) or rejected with
    a reason. Saving again (any status) makes a new revision that needs review again.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    decision = models.OneToOneField("moderation.Decision", on_delete=models.CASCADE, related_name="correction")
    stages = models.JSONField(default=list)
    label = models.CharField(max_length=100)
    diff = models.JSONField(default=list, help_text="per-stage changes against the model's CoT")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    revision = models.PositiveIntegerField(default=1)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("correct_cot", "Can correct model chain-of-thought")]

    def __str__(self) -> str:
        return f"correction of decision {self.decision_id} (rev {self.revision})"


class Tag2CotTask(models.Model):
    """ "Write the reasoning for this label": an item with a human label but no acceptable CoT.

    ``stages`` starts as a draft (from the serving VLM asked to explain ``target_label``, or the
    evidence baseline's extraction stage) and holds the labeler's five stages once written.

    An open task whose decision gets an accepted CoT correction is closed as ``superseded`` (``superseded_by``
    names the correction): the decision has a person's checked reasoning, and a second one would be written for
    nothing (the training data keeps one written CoT per decision).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        SUPERSEDED = "superseded", "Superseded by a correction"

    class DraftSource(models.TextChoices):
        NONE = "", "No draft"
        MODEL = "model", "Model-assisted (serving VLM)"
        BASELINE = "baseline", "Evidence baseline extraction"

    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="tag2cot_tasks")
    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="tag2cot_tasks")
    policy_version = models.ForeignKey("moderation.PolicyVersion", on_delete=models.PROTECT)
    target_label = models.CharField(max_length=100)
    label_source = models.CharField(max_length=40, help_text="where the human label came from")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    stages = models.JSONField(default=list)
    draft_source = models.CharField(max_length=20, choices=DraftSource.choices, blank=True, default="")
    draft_model = models.CharField(max_length=200, blank=True)
    draft_error = models.TextField(blank=True)
    # A claim is a lease, as a review item's: taken with a button (a POST), renewed by taking it again,
    # released by its holder or on logout; once lapsed another labeler may take the task over, and until
    # one does it stays its holder's. Rows claimed before leases existed have none: they are free to take.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        CotCorrection,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="superseded_tag2cot_tasks",
        help_text="the accepted correction that closed this task (status superseded)",
    )

    class Meta:
        ordering = ["status", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "target_label"], name="one_tag2cot_per_decision_label")
        ]
        # The task list's tabs (one status, or all), oldest first: its pages read a window of tasks from here.
        indexes = [
            models.Index(fields=["status", "created_at", "id"], name="tag2cot_status_order"),
            models.Index(fields=["created_at", "id"], name="tag2cot_created_order"),
        ]

    def __str__(self) -> str:
        return f"tag2cot #{self.pk}: decision {self.decision_id} → {self.target_label}"

    def lease_live(self, now: datetime | None = None) -> bool:
        """Whether someone holds this open task under a lease that has not lapsed."""
        return (
            self.status == self.Status.OPEN
            and self.assigned_to_id is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > (now or timezone.now())
        )


class DisagreementRule(models.Model):
    """When user feedback contradicts the model strongly enough to open an adjudication.

    - ``reported_pass``: the model passed the video, yet report rate ≥ ``threshold`` with ≥ ``min_events`` views.
    - ``appeal_overturned``: the model flagged it, yet ≥ ``min_events`` appeals were overturned (succeeded).
    - ``positive_engagement``: the model flagged it, yet like rate ≥ ``threshold`` with ≥ ``min_events`` views.
    """

    class Kind(models.TextChoices):
        REPORTED_PASS = "reported_pass", "Model passed it, users report it"
        APPEAL_OVERTURNED = "appeal_overturned", "Model flagged it, an appeal succeeded"
        POSITIVE_ENGAGEMENT = "positive_engagement", "Model flagged it, engagement strongly positive"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    threshold = models.FloatField(default=0.0, help_text="a rate in 0..1 (unused by appeal_overturned)")
    min_events = models.PositiveIntegerField(default=1, help_text="views (rates) or overturned appeals needed")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Adjudication(models.Model):
    """A disagreement between the model and user feedback, for a moderator to settle.

    One per (decision, rule kind): re-evaluating the same disagreement never opens a second task.
    The outcome becomes the video's trusted label (``ItemLabel`` source ``adjudication``).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DECIDED = "decided", "Decided"

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="adjudications")
    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="adjudications")
    kind = models.CharField(max_length=30, choices=DisagreementRule.Kind.choices)
    rule = models.ForeignKey(DisagreementRule, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField()
    feedback = models.JSONField(default=dict, help_text="the user-feedback statistics when it was opened")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    outcome_label = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["decision", "kind"], name="one_adjudication_per_decision_kind")]
        # The adjudication list's tabs (one status, or all), oldest first: its pages read a window from here.
        indexes = [
            models.Index(fields=["status", "created_at", "id"], name="adjudication_status_order"),
            models.Index(fields=["created_at", "id"], name="adjudication_created_order"),
        ]


class LabelStudioImport(models.Model):
    """A Label Studio annotation already imported (by LS annotation id), so importing again is a no-op."""

    ls_url = models.CharField(max_length=500)
    ls_project_id = models.IntegerField()
    ls_task_id = models.IntegerField()
    ls_annotation_id = models.IntegerField()
    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=100)
    result = models.CharField(max_length=40, help_text="what the import did: review, correction, skipped…")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ls_url", "ls_annotation_id"], name="one_import_per_ls_annotation")
        ]
