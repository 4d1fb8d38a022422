"""Platform integration: who the platform is (Integration and its token), what it submitted
(idempotency keys, its videos), where it wants to hear about changes (webhook endpoints) and what
was told to it (the outbox of events and their deliveries)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Integration(models.Model):
    """A platform client. Its token is shown once and stored hashed (SHA-256); it authenticates the
    integration endpoints (submit and verdict, pull sync, feedback events) and nothing else: it is
    not a user, so the session/``Token`` APIs refuse it. It expires (``token_expires_at``) and is replaced by
    rotating it; an integration switched off (``is_active``) is refused and sent no webhook."""

    name = models.CharField(max_length=200, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12, help_text="first characters of the token, to recognise it")
    token_expires_at = models.DateTimeField(
        help_text="the token is refused (401) from then on; rotating it gives a new one (INTEGRATION_TOKEN_LIFETIME_DAYS)"
    )
    is_active = models.BooleanField(default=True, help_text="off: its token is refused and no webhook is sent")
    rate_limit = models.CharField(
        max_length=20,
        blank=True,
        help_text="requests per period, e.g. 120/min or 5000/hour; empty = INTEGRATION_RATE_LIMIT",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("manage_integrations", "Manage integrations, webhooks and see the operations dashboard")]

    def __str__(self) -> str:
        return self.name

    @property
    def import_folder(self) -> str:
        """The subfolder of each of MEDIA_IMPORT_ROOTS whose files this integration may submit by ``path`` (and
        no other's): from its id, which a rename does not change."""
        from moderation.media.ingest import integration_import_folder

        return integration_import_folder(self.pk)


class IntegrationVideo(models.Model):
    """A video an integration submitted: what its API reads (verdicts, decisions, labels) are scoped to.

    ``external_id`` is the platform's own id for the video, unique per integration: two platforms may
    use the same id for different videos, and one platform's id is never looked up, shown or sent to
    another (``Video.external_id`` is the workbench's own namespace: uploads, manifests, imports)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="videos")
    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "video"], name="one_submission_per_video"),
            models.UniqueConstraint(
                fields=["integration", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="external_id_per_integration",
            ),
        ]


class IdempotencyKey(models.Model):
    """The first result of a POST made with an ``Idempotency-Key`` header; a retry returns it.

    The owner is an integration or a user. ``fingerprint`` hashes the request, so reusing a key for a
    different request is refused instead of silently answered with someone else's result.
    """

    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=201)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "key"], condition=models.Q(integration__isnull=False), name="idem_integration"
            ),
            models.UniqueConstraint(fields=["user", "key"], condition=models.Q(user__isnull=False), name="idem_user"),
        ]


class EventType(models.TextChoices):
    DECISION_CREATED = "decision.created", "A model decided a video"
    REVIEW_COMPLETED = "review.completed", "A reviewer submitted a verdict"
    LABEL_FINAL = "label.final", "A video's trusted label was settled (review or adjudication)"
    TAGS_FINAL = "tags.final", "A video's content tags were finalised"
    MODEL_PROMOTED = "model.promoted", "A model version now serves new decisions"


# Sent only when an admin presses "Send a test event" on an endpoint's page, to that endpoint alone; no endpoint
# subscribes to it (it is not an ``EventType``), so receivers can tell a test from a real event by its type.
TEST_EVENT_TYPE = "webhook.test"
OUTBOX_EVENT_TYPES = [*EventType.choices, (TEST_EVENT_TYPE, "A test sent from an endpoint's page")]


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it describes (transactional outbox).

    ``id`` is the stable event id receivers de-duplicate on. ``dispatched_at`` is set once the
    event has been fanned out into deliveries; until then a periodic sweep picks it up, so a crash
    between commit and enqueue loses nothing.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40, choices=OUTBOX_EVENT_TYPES)
    video = models.ForeignKey("moderation.Video", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], condition=models.Q(dispatched_at__isnull=True), name="outbox_undispatched"
            )
        ]


class WebhookEndpoint(models.Model):
    """A URL of an integration that receives the event types it subscribes to, signed with ``secret``."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=100, help_text="HMAC-SHA256 key; shown to the admin who creates it")
    event_types = models.JSONField(default=list, help_text="subscribed event types")
    only_own_videos = models.BooleanField(
        default=True, help_text="video events only for videos this integration submitted (model events always)"
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.integration} → {self.url_shown}"

    @property
    def url_shown(self) -> str:
        """The address as screens show it: a password in it is masked. New addresses may not carry one
        (``webhook_endpoint_create`` refuses them); endpoints saved before that still deliver with it."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = f"{parts.username}:•••@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


class WebhookDelivery(models.Model):
    """One event to one endpoint: at-least-once, retried with exponential backoff and jitter."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_endpoint_event")]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="delivery_log"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "retrying", "sending"]),
                name="delivery_due",
            ),
        ]
