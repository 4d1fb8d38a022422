"""Integration reads: what a caller may see, a video's current outcome, pull-sync windows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from moderation.errors import ModerationError
from moderation.integrations.models import Integration, IntegrationVideo, WebhookDelivery
from moderation.media.models import Video
from workbench.db import aggregate_row, aggregate_rows_read
from workbench.filters import ListFilter
from workbench.roles import Perm


def videos_visible_to(*, integration: Integration | None, qs: QuerySet[Any], field: str = "pk") -> QuerySet[Any]:
    """``qs`` narrowed to the videos ``integration`` submitted (``field`` names the video id); a user
    (integration None) is left to the view's role check and sees everything it allows."""
    if integration is None:
        return qs
    owned = IntegrationVideo.objects.filter(integration=integration).values("video_id")
    return qs.filter(**{f"{field}__in": owned})


def videos_with_external_id(*, integration: Integration | None, qs: QuerySet[Any], field: str = "pk") -> QuerySet[Any]:
    """``qs`` with ``shown_external_id``: the external id the caller knows the video by (``field`` names the
    video id). An integration sees its own id for the video (``IntegrationVideo.external_id``), never
    another platform's; a user sees the workbench's own (``Video.external_id``: uploads, manifests, imports).
    And ``metadata_of_another``: the video's title, description, uploader and stored name are not the caller's
    to read, because another platform sent these bytes first, or the workbench had them before any platform (a
    moderator's upload, an import: the uploader is a workbench user's name)."""
    video = "" if field == "pk" else field.removesuffix("_id") + "__"  # "video_id" -> "video__"
    if integration is None:
        return qs.annotate(shown_external_id=F(f"{video}external_id"), metadata_of_another=Value(False))
    mine = IntegrationVideo.objects.filter(integration=integration, video_id=OuterRef(field))
    # The same bytes sent by two platforms are one video: its title, description, uploader and stored name are
    # what the first sent, that platform's (its user's handle), not for the second.
    earlier = IntegrationVideo.objects.filter(video_id=OuterRef(OuterRef(field)), pk__lt=OuterRef("pk")).exclude(
        integration=integration
    )
    # A platform's submission makes a video with no workbench user and the upload source (``video_submit``).
    made_by_a_platform = Q(**{f"{video}created_by__isnull": True, f"{video}source": Video.Source.UPLOAD})
    return qs.annotate(
        shown_external_id=Subquery(mine.values("external_id")[:1]),
        metadata_of_another=Case(
            When(made_by_a_platform & ~Exists(mine.filter(Exists(earlier))), then=Value(False)),
            default=Value(True),
            output_field=BooleanField(),
        ),
    )


def external_id_for_recipient(*, integration_id: int, video_id: int, shared: str | None) -> str | None:
    """The external id an event about ``video_id`` carries to ``integration_id``'s endpoint: the integration's
    own id for it if it submitted the video; none if another platform did (never that platform's id); else
    ``shared``, the workbench's own id written into the event."""
    links = dict(IntegrationVideo.objects.filter(video_id=video_id).values_list("integration_id", "external_id"))
    if integration_id in links:
        return links[integration_id]
    return None if links else shared


def integration_video_by_external_id(*, integration: Integration, external_ids: set[str]) -> dict[str, int]:
    """The videos ``integration`` submitted under these external ids of its own: {external id: video id}."""
    rows = IntegrationVideo.objects.filter(integration=integration, external_id__in=external_ids)
    return {ext: video_id for ext, video_id in rows.values_list("external_id", "video_id") if ext is not None}


def video_error_for(*, integration: Integration | None, video: Video) -> str:
    """A video's failure reason as ``integration`` may read it: the whole text for a user; for a platform, a
    reason written for its sender (``Video.error_for_sender``, set where the failure was recorded: the file
    is not a video, is damaged…) as it is, and for anything else (an unexpected exception, storage or model
    trouble: the deployment's inside) a sentence without the detail, chosen by where it stopped."""
    if integration is None or not video.error or video.error_for_sender:
        return video.error
    if video.status != Video.Status.FAILED:  # still going: a stage waits for media storage and is retried
        return "Waiting for media storage; processing will be retried."
    stages: dict[str, str] = {Video.Stage.INFERENCE: "Model inference", Video.Stage.ASR: "Speech to text"}
    stage = stages.get(video.stage, "Processing")
    return f"{stage} failed on the workbench's side; its operators can see why and retry it."


def videos_of_other_integrations(*, integration: Integration, video_ids: set[int]) -> set[int]:
    """Of ``video_ids``, the videos other integrations submitted and ``integration`` did not: another
    platform's, which this one may neither read nor send events about. A video no integration submitted (an
    upload, a folder or KuaiMod import) is no platform's, so any integration's users may have seen it."""
    if not video_ids:
        return set()
    submitted = IntegrationVideo.objects.filter(video_id__in=video_ids)
    mine = set(submitted.filter(integration=integration).values_list("video_id", flat=True))
    return set(submitted.exclude(integration=integration).values_list("video_id", flat=True)) - mine


def parse_since(value: str | None) -> datetime | None:
    """``since`` as ISO 8601 with a timezone (``2026-05-01T12:00:00Z``); None when absent."""
    if value in (None, ""):
        return None
    try:
        at = parse_datetime(str(value).strip().replace(" ", "+"))
    except ValueError:
        at = None
    if at is None:
        raise ModerationError("'since' must be ISO 8601, e.g. 2026-05-01T12:00:00Z.")
    if timezone.is_naive(at):
        raise ModerationError("'since' needs a timezone (e.g. a trailing Z).")
    try:
        # In UTC: PostgreSQL refuses offsets Python accepts (e.g. +22:18), and far years overflow.
        return at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ModerationError("'since' is out of range.") from exc


TOKEN_EXPIRY_WARNING_DAYS = 30

_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def integration_rate_shown(rate: str) -> str:
    """A rate as the screens say it: "600/min" -> "600 requests a minute" (DRF reads a period by its first letter)."""
    count, _, period = rate.partition("/")
    unit = _PERIODS.get(period.strip()[:1])
    if not unit or not count.strip().isdigit():
        return rate
    return f"{count.strip()} request{'' if count.strip() == '1' else 's'} a{'n' if unit == 'hour' else ''} {unit}"


def integration_default_rate() -> str:
    """The rate every integration without its own ``rate_limit`` gets (INTEGRATION_RATE_LIMIT)."""
    from django.conf import settings

    rates: dict[str, str] = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]  # type: ignore[index,assignment]
    return rates["integration"]


def integrations_overview(*, pk: int | None = None) -> list[Any]:
    """Integrations (or the one ``pk``) with their webhook endpoints and per-endpoint delivery counts (one query
    each)."""
    from django.db.models import Count, Prefetch, Q

    from moderation.integrations.models import WebhookDelivery, WebhookEndpoint

    endpoints = WebhookEndpoint.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.DELIVERED)),
        waiting=Count(
            "deliveries",
            filter=Q(
                deliveries__status__in=[
                    WebhookDelivery.Status.PENDING,
                    WebhookDelivery.Status.RETRYING,
                    WebhookDelivery.Status.SENDING,
                ]
            ),
        ),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
    ).order_by("pk")
    rows = Integration.objects.all() if pk is None else Integration.objects.filter(pk=pk)
    integrations = list(
        rows.order_by("name")
        .annotate(video_count=Count("videos", distinct=True))
        .prefetch_related(Prefetch("webhook_endpoints", queryset=endpoints))
    )
    default = integration_rate_shown(integration_default_rate())
    now = timezone.now()
    for integration in integrations:  # the limit in effect, in words; whether its token still works
        integration.token_expired = integration.token_expires_at <= now  # type: ignore[attr-defined]
        # Within a month of it: said in the warning colour, so the platform gets a new one before it is cut off.
        soon = integration.token_expires_at - now < timedelta(days=TOKEN_EXPIRY_WARNING_DAYS)
        integration.token_expires_soon = soon  # type: ignore[attr-defined]
        own = integration.rate_limit
        shown = integration_rate_shown(own) if own else f"{default} (the server default)"
        integration.rate_shown = shown  # type: ignore[attr-defined]
        for endpoint in integration.webhook_endpoints.all():  # waiting while it or its integration is off: held
            held = endpoint.waiting if not (endpoint.is_active and integration.is_active) else 0  # type: ignore[attr-defined]
            endpoint.held = held  # type: ignore[attr-defined]
    return integrations


def integrations_home_rows() -> dict[str, QuerySet[Any]]:
    """What the home page's integrations panel counts, one row a table (``workbench.db.aggregate_row``): integrations
    (switched on), tokens expired or expiring within TOKEN_EXPIRY_WARNING_DAYS, webhook endpoints (disabled),
    deliveries waiting to go out and failed for good. Read with the home's other counts in one statement (three
    statements before, one a table)."""
    from django.db.models import Count

    from moderation.integrations.models import WebhookEndpoint

    now = timezone.now()
    waiting = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING, WebhookDelivery.Status.SENDING]
    return {
        "integrations": aggregate_row(
            Integration.objects.all(),
            integrations=Count("pk"),
            switched_on=Count("pk", filter=Q(is_active=True)),
            tokens_expired=Count("pk", filter=Q(token_expires_at__lte=now)),
            tokens_expiring=Count(
                "pk",
                filter=Q(
                    token_expires_at__gt=now, token_expires_at__lt=now + timedelta(days=TOKEN_EXPIRY_WARNING_DAYS)
                ),
            ),
        ),
        "endpoints": aggregate_row(
            WebhookEndpoint.objects.all(),
            endpoints=Count("pk"),
            endpoints_disabled=Count("pk", filter=Q(is_active=False)),
        ),
        "deliveries": aggregate_row(
            WebhookDelivery.objects.all(),
            deliveries_waiting=Count("pk", filter=Q(status__in=waiting)),
            deliveries_failed=Count("pk", filter=Q(status=WebhookDelivery.Status.FAILED)),
        ),
    }


def integrations_home_counts(*, counted: dict[str, dict[str, Any]] | None = None) -> dict[str, int]:
    """``integrations_home_rows`` as one mapping of counts; ``counted``: those rows read already (else read here,
    in one statement)."""
    if counted is None:
        counted = aggregate_rows_read(integrations_home_rows())
    return {name: int(n or 0) for row in counted.values() for name, n in row.items()}


def webhook_endpoint_disabled_after(*, endpoint: Any) -> int | None:
    """How many failed attempts in a row disabled ``endpoint`` by themselves (WEBHOOK_DISABLE_AFTER_FAILURES reached:
    its count is kept while it is off); None when it is on or an admin disabled it before that."""
    from django.conf import settings

    if endpoint.is_active or endpoint.consecutive_failures < int(settings.WEBHOOK_DISABLE_AFTER_FAILURES):
        return None
    return int(endpoint.consecutive_failures)


@dataclass(frozen=True)
class DeliveryState:
    """A delivery as its log shows it: ``label`` in a few words, ``tone`` (a CSS class), ``detail`` (what happens
    next), ``held`` (waiting because its endpoint or integration is off: it goes out when they are on again)."""

    label: str
    tone: str
    detail: str = ""
    held: bool = False
    # Redeliver sends it only while its endpoint and integration are on (``webhook_redeliver`` refuses otherwise).
    can_redeliver: bool = True


def webhook_delivery_state(*, delivery: Any, now: datetime | None = None) -> DeliveryState:
    """What a delivery is doing now. The stored status alone says "Retrying" with a next try in the past for a
    delivery of an endpoint switched off: nothing is sent then, and the delivery waits (held) until the endpoint
    and its integration are on again, when it goes out at once (``webhook_deliveries_resume``)."""
    from moderation.integrations.models import WebhookDelivery

    now = now or timezone.now()
    status = WebhookDelivery.Status
    endpoint = delivery.endpoint
    off = not (endpoint.is_active and endpoint.integration.is_active)
    if delivery.status == status.DELIVERED:
        return DeliveryState("Delivered", "status-ready", can_redeliver=not off)
    if delivery.status == status.FAILED:
        tries = f"{delivery.attempts} attempt{'' if delivery.attempts == 1 else 's'}"
        again = "Redeliver sends it once more." if not off else "It can be redelivered once the endpoint is on again."
        return DeliveryState(f"Failed: gave up after {tries}", "status-failed", again, can_redeliver=not off)
    if delivery.status == status.SENDING and delivery.lease_expires_at and delivery.lease_expires_at > now:
        # In flight even if the endpoint was switched off meanwhile: its result is recorded as it comes.
        return DeliveryState(
            "Sending", "status-sending", f"Attempt {delivery.attempts} is in flight.", can_redeliver=False
        )
    if not endpoint.integration.is_active:
        return DeliveryState(
            "Held: integration switched off",
            "warning",
            f"Goes out as soon as “{endpoint.integration.name}” is switched on again.",
            held=True,
            can_redeliver=False,
        )
    if not endpoint.is_active:
        after = webhook_endpoint_disabled_after(endpoint=endpoint)
        label = (
            f"Held: endpoint disabled after {after} failed attempts in a row"
            if after is not None
            else "Held: endpoint disabled"
        )
        detail = "Goes out as soon as the endpoint is enabled again."
        return DeliveryState(label, "warning", detail, held=True, can_redeliver=False)
    if delivery.status == status.SENDING:
        return DeliveryState(
            "Sending: sender lost", "warning", "Its sender stopped mid-send; the next sweep sends it again."
        )
    label = "Retrying" if delivery.status == status.RETRYING else "Pending"
    when = delivery.next_attempt_at
    if when is None or when <= now:
        since = f" since {timezone.localtime(when):%H:%M:%S}" if when else ""
        return DeliveryState(label, f"status-{delivery.status}", f"Due{since}: waiting for a worker.")
    return DeliveryState(label, f"status-{delivery.status}", f"Next try {timezone.localtime(when):%H:%M:%S}.")


# The endpoint page's "Send a test event" line asks for its delivery's outcome once a second (``hx-trigger="every
# 1s"``) this many times at most: a test nobody's worker sends (the workers are down) stops asking and says so.
TEST_OUTCOME_POLLS = 20
# While the delivery waits to retry, the line asks again when its next try is due, at least this often, and stops
# asking (saying why) once that try is this many seconds overdue: its worker is gone.
TEST_OUTCOME_RETRY_POLL_MAX = 30
TEST_OUTCOME_OVERDUE_SECONDS = 60


@dataclass(frozen=True)
class WebhookTestOutcome:
    """What became of a test event's delivery, as the line under "Send a test event" says it: ``text``, ``tone`` (a
    CSS class), ``final`` (nothing more will change soon: the line stops asking) and ``poll_seconds`` (when it is
    not final, how long until it asks again). A delivery whose attempt failed and that waits to retry is not final:
    the line follows it through its retries to delivered or failed."""

    text: str
    tone: str
    final: bool
    poll_seconds: int = 1


def webhook_test_outcome(*, delivery: Any, polls: int = 0, now: datetime | None = None) -> WebhookTestOutcome:
    """The outcome of test delivery ``delivery`` (its endpoint and integration selected) after ``polls`` asks:
    queued, sending, waiting to retry (what the last attempt got, when the next is), delivered (the HTTP status, the
    time it took, on which attempt) or failed (the HTTP status or the error)."""
    from moderation.integrations.models import WebhookDelivery

    now = now or timezone.now()
    status = WebhookDelivery.Status
    answer = f"HTTP {delivery.last_status_code}" if delivery.last_status_code else delivery.last_error
    took = f" in {delivery.last_latency_ms:.0f} ms" if delivery.last_latency_ms is not None else ""
    if delivery.status == status.DELIVERED:
        on = f" on attempt {delivery.attempts}" if delivery.attempts > 1 else ""
        return WebhookTestOutcome(f"Delivered{on}: the endpoint answered {answer}{took}.", "status-ready", final=True)
    if delivery.status == status.FAILED:
        tries = f"{delivery.attempts} attempt{'' if delivery.attempts == 1 else 's'}"
        return WebhookTestOutcome(f"Failed after {tries}: {answer or 'no answer'}.", "status-failed", final=True)
    state = webhook_delivery_state(delivery=delivery, now=now)
    if state.held:
        return WebhookTestOutcome(f"Not sent: {state.label.lower()}. {state.detail}", "warning", final=True)
    if delivery.status == status.RETRYING and delivery.attempts:
        got = (
            f"Not delivered yet: attempt {delivery.attempts} of {settings.WEBHOOK_MAX_ATTEMPTS} got "
            f"{answer or 'no answer'}{took}."
        )
        when = delivery.next_attempt_at
        wait = (when - now).total_seconds() if when is not None else 0.0
        if wait < -TEST_OUTCOME_OVERDUE_SECONDS:
            return WebhookTestOutcome(
                f"{got} Its next try was due at {timezone.localtime(when):%H:%M:%S} and no worker has sent it "
                "(are the webhook workers running?). The delivery log below shows its outcome when it is sent.",
                "warning",
                final=True,
            )
        return WebhookTestOutcome(
            f"{got} {state.detail}",
            "warning",
            final=False,
            poll_seconds=int(min(max(1.0, math.ceil(wait)), TEST_OUTCOME_RETRY_POLL_MAX)),
        )
    if delivery.status == status.SENDING:
        return WebhookTestOutcome(f"Sending: attempt {delivery.attempts} is in flight…", "status-sending", final=False)
    if polls >= TEST_OUTCOME_POLLS:
        return WebhookTestOutcome(
            f"Still queued after {TEST_OUTCOME_POLLS} seconds: no worker has sent it yet (are the webhook workers "
            "running?). The delivery log below shows its outcome when it is sent.",
            "warning",
            final=True,
        )
    return WebhookTestOutcome("Queued: waiting for a worker to send it…", "status-pending", final=False)


# The delivery log's status choice ("" every delivery); an unknown ``?status=`` is said, then every delivery shown.
DELIVERY_STATUS_FILTER = ListFilter(
    param="status",
    noun="delivery status",
    tabs=(("", "all"), *WebhookDelivery.Status.choices),
    default="",
    everything="",
    everything_words="every delivery",
)


def webhook_delivery_log(*, endpoint: Any, status: str = "", limit: int = 100) -> list[Any]:
    """An endpoint's latest deliveries, each with ``state`` (``webhook_delivery_state``)."""
    from moderation.integrations.models import WebhookDelivery

    qs = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event", "endpoint__integration")
        .order_by("-created_at", "-pk")
    )
    if status:
        qs = qs.filter(status=status)
    rows = list(qs[:limit])
    now = timezone.now()
    for row in rows:
        row.state = webhook_delivery_state(delivery=row, now=now)  # type: ignore[attr-defined]
    return rows


def webhook_endpoint_held_count(*, endpoint: Any) -> int:
    """How many of ``endpoint``'s deliveries wait to be sent (held while it or its integration is off)."""
    from moderation.integrations.models import WebhookDelivery

    live = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING, WebhookDelivery.Status.SENDING]
    return WebhookDelivery.objects.filter(endpoint=endpoint, status__in=live).count()


def import_folders_all_open_to(*, user: Any) -> bool:
    """Whether ``user`` may import server files from every integration's folder (``Integration.import_folder``) as
    well as the rest of MEDIA_IMPORT_ROOTS: those who manage integrations (the admin role, superusers), as they hold
    the integrations' tokens. Anyone else with upload rights is kept out of them (a platform's files are its own:
    another platform is confined to its folder, a user to everything but those folders)."""
    return bool(user.is_active and user.has_perm(Perm.MANAGE_INTEGRATIONS))
