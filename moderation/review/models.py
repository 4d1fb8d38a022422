from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class ReviewQueue(models.Model):
    """A review queue defined as data: which decisions it takes, in what order, how fast, by whom.

    Routing (``review_tasks_create_for_decision``) puts a new decision into every *routed* queue
    whose filters it matches; when none matches it goes to the default queue. Empty filters match
    everything. ``sample_rate`` < 1 makes a random QA sample of the matching decisions.
    """

    DEFAULT_SLUG = "default"
    ADJUDICATION_SLUG = "adjudication"
    SENIOR_SLUG = "senior"  # the default queue's escalation queue, made by ``manage.py bootstrap``
    TAGS_SLUG = "tags"

    class Kind(models.TextChoices):
        MODERATION = "moderation", "Moderation verdicts"
        TAGS = "tags", "Content tags"

    # A tags queue serves the same claim/lease/SLA machinery, but its items are tagged on the tag
    # screen (moderation.tagging) instead of given a verdict; it never takes routed decisions.
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MODERATION)

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    # Escalation and adjudication queues only receive items handed to them, not new decisions.
    routes_new_decisions = models.BooleanField(default=True)

    # Filters on the decision.
    policy = models.ForeignKey("moderation.Policy", null=True, blank=True, on_delete=models.SET_NULL)
    labels = models.JSONField(default=list, blank=True, help_text="model labels (categories) to take; empty = any")
    confidence_min = models.FloatField(null=True, blank=True)
    confidence_max = models.FloatField(null=True, blank=True)
    escalated_only = models.BooleanField(default=False, help_text="only decisions the cascade escalated to the VLM")
    user_reported_only = models.BooleanField(
        default=False, help_text="only items users reported or whose feedback disagrees with the model"
    )
    sample_rate = models.FloatField(default=1.0, help_text="fraction of matching decisions taken (random QA sample)")
    # The model whose verdict and chain of thought this queue's reviewers see. Empty: the decision's
    # own model (the policy's serving model). Set: a matching item is decided again by this model,
    # under the same policy version, and that decision is what the queue reviews.
    model_version = models.ForeignKey(
        "moderation.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="decide this queue's items with this model; empty = the policy's serving model",
    )

    priority = models.IntegerField(default=0)
    # Active learning: order the queue by how much a human label is worth (``review_label_value``)
    # instead of "likely violations first". The cascade retrains on these labels by beat.
    order_by_label_value = models.BooleanField(
        default=False,
        help_text="serve first the items whose label teaches the model most: uncertain stage-1 verdicts, "
        "user feedback that disagrees with the model, close SLA deadlines",
    )
    sla_seconds = models.PositiveIntegerField(default=24 * 3600, help_text="deadline = video ingest time + SLA")
    required_reviews = models.PositiveSmallIntegerField(default=1)
    gold_rate = models.FloatField(default=0.0, help_text="share of claims that serve a gold item with a known answer")
    allowed_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="review_queues", help_text="empty = every reviewer"
    )
    escalation_queue = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="senior queue"
    )
    adjudication_queue = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="where disagreements go"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name


class AwaitedQueueItem(models.Model):
    """An item routing owes a review queue that names its own model: ``decision`` goes into ``queue`` once that
    model has decided it (``review_queue_decision``, on the infer queue), and the row is deleted then.

    While such a row on a queue restricted to groups exists, ``Video.routed_restricted`` is set
    (``review_routing_flag_sync``): the video is closed to all but admins until its item says whose it is. An edit
    after which the queue would never take the item (its model removed or made the decision's own, the queue
    deleted, made inactive, its filters or groups changed) routes the decision again as the queues say now
    (``review_decision_reroute``), so no video waits for good on an item nobody will make."""

    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="awaited_items")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["decision", "queue"], name="one_awaited_item_per_queue")]

    def __str__(self) -> str:
        return f"item of decision {self.decision_id} awaited by queue {self.queue_id}"


class ReviewTask(models.Model):
    """One unit of review work: a decision in a queue.

    A queue needing N independent reviews holds N tasks (``slot`` 0..N-1) for the decision; one
    reviewer can hold at most one of them. Gold tasks (``is_gold``) are made for one reviewer at
    claim time from items with a known answer and score that reviewer.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"
        ESCALATED = "escalated", "Escalated"

    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="review_tasks")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.PROTECT, related_name="tasks")
    slot = models.PositiveSmallIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    priority = models.IntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "deadline", "pk"]
        indexes = [
            # The claim query walks this index in order and stops at the first unlocked row.
            models.Index(fields=["queue", "status", "-priority", "deadline", "id"], name="task_claim_order"),
            models.Index(fields=["queue", "completed_at"], name="task_queue_completed"),
            # Open items past their deadline, counted as they are (a count that changes with the clock, not with
            # a write): the range is as long as the queue's breaches, not the queue.
            models.Index(
                fields=["queue", "deadline"],
                condition=models.Q(status__in=["pending", "claimed"], is_gold=False),
                name="task_open_deadline",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["decision", "queue", "slot"], condition=models.Q(is_gold=False), name="one_task_per_slot"
            ),
        ]

    def __str__(self) -> str:
        # Ids only (the admin names a chosen item this way; the queue's name would be a query per row).
        return f"review item {self.pk} of decision {self.decision_id} ({self.status})"

    def is_held_by(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        """Whether ``user`` still holds this item: claimed by them and not yet decided, escalated or
        handed on. A lapsed lease does not end it: the item stays theirs until someone else claims it."""
        return self.status == self.Status.CLAIMED and self.claimed_by_id is not None and self.claimed_by_id == user.pk


class ReviewQueueCount(models.Model):
    """A change in how many non-gold items a queue holds in one status: the queue list's and the review screen's
    counts are the sums of these rows (``selectors.review_queue_overview``), read without touching the items.

    The rows are written by the database itself, not by our code: statement triggers on ``ReviewTask``
    (migration 0045) add one row per queue, status and lateness that a statement changed, with the net change, in
    the statement's own transaction. Every writer is counted — the raw claim statement, ``bulk_create``,
    ``QuerySet.update``, a cascading delete, a person at ``psql`` — and a count commits, or rolls back, with the
    change it counts, so a sum read at any moment equals counting the items at that moment. Triggers only insert,
    so concurrent writers never wait on one another for a count. ``counts.counts_fold`` folds a queue's rows into
    one per key when they pile up (the sums are unchanged)."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=ReviewTask.Status.choices)
    # Done or escalated after its deadline (``completed_at > deadline``): an SLA breach that stays one.
    late = models.BooleanField(default=False)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.n:+d} {self.status}{' late' if self.late else ''} in queue {self.queue_id}"


class RoutingRecheck(models.Model):
    """A video whose routing or decisions changed: the ops page's routing panel checks these again (and only these)
    for the inconsistently routed kinds that are not live (``routing_orphans``' ``unrouted`` and ``other_policy``)
    and for a missing auto-applied decision (``videos_missing_auto_decision``).

    Written by the database, not by our code (migration 0071, as ``ReviewQueueCount``'s): triggers on decisions,
    review items, awaited rows, queues, videos, policies and policy versions add the videos whose state a statement
    could have made inconsistent, in the statement's own transaction, so every writer is seen. Each check deletes
    the rows of videos it found consistent (``moderation.ops.checks``); a video found inconsistent keeps its row
    until a later check finds it mended. So a video is inconsistent only if it has a row here, and the page's
    figures are exact at each load while each reads the few changed videos, not the whole library. No foreign key:
    a deleted video's row goes at the next check."""

    video_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"video {self.video_id} to check again"


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

    class Severity(models.TextChoices):
        NONE = "none", "None"
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    # "none" for the non-violative label; a violation's severity is one its policy tag allows
    # (all of low/medium/high when the tag names none). Empty: the reviewer did not assess it.
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True, default="")
    note = models.TextField(blank=True)
    # Gold items only: whether the verdict matched the known answer.
    gold_correct = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"review {self.pk} of decision {self.decision_id}: {self.verdict} {self.label}"


class ReviewSkip(models.Model):
    """A reviewer passed on an item, and why."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"skip of review item {self.task_id} at {self.at:%Y-%m-%d %H:%M}"


class AuditEvent(models.Model):
    """Append-only record of every review action. The database refuses UPDATE and DELETE on it
    (trigger ``audit_event_append_only``); ``actor`` has no FK constraint so deleting a user never
    needs to touch the log."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50)
    payload = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.object_type}#{self.object_id}"
