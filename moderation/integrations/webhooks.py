"""Webhook writes: endpoints, fan-out of outbox events into deliveries, and delivery itself.

At-least-once: an event is fanned out by the task queued after its commit *or* by the periodic
sweep; a delivery is retried with exponential backoff and jitter until a 2xx or
WEBHOOK_MAX_ATTEMPTS; a delivery whose sender died (lease lapsed) is sent again. Receivers
de-duplicate on the event id (``Workbench-Event-Id``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.integrations.models import (
    TEST_EVENT_TYPE,
    EventType,
    Integration,
    IntegrationVideo,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from moderation.integrations.selectors import external_id_for_recipient
from moderation.integrations.signing import HEADER as SIGNATURE_HEADER
from moderation.integrations.signing import signature_header
from moderation.integrations.targets import WebhookTargetRefused, pinned_post, webhook_target_addresses
from moderation.signals import webhook_endpoint_changed
from workbench.queues import enqueue

logger = logging.getLogger(__name__)

DELIVER_TASK = "moderation.integrations.tasks.deliver_webhook"
LIVE = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING, WebhookDelivery.Status.SENDING)


# --- endpoints ------------------------------------------------------------------------------------


def _clean_event_types(event_types: Any) -> list[str]:
    chosen = sorted({str(t) for t in (event_types or [])})
    unknown = [t for t in chosen if t not in EventType.values]
    if unknown:
        raise ModerationError(f"Unknown event type(s): {', '.join(unknown)}.")
    if not chosen:
        raise ModerationError("Subscribe the endpoint to at least one event type.")
    return chosen


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    longest = WebhookEndpoint._meta.get_field("url").max_length or 1000
    if len(url) > longest:  # the validator allows 2,048 characters: 1,001 to 2,048 were a database error, a 500
        raise ModerationError(f"A webhook address has at most {longest} characters; this one has {len(url)}.")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ModerationError(f"{url!r} is not an http(s) URL.") from exc
    try:  # the validator takes any 5 digits: "https://host:99999/" was a ValueError past it, a 500
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise ModerationError(f"{url!r} names no port a receiver can listen on: a port is 1 to 65535.")
    if urlsplit(url).username is not None or "@" in urlsplit(url).netloc:
        # A user name or password in the address is shown on the integrations screen to every admin and
        # written to logs; the receiver checks the request's signature header instead.
        raise ModerationError(
            "A webhook address may not carry a user name or password (it would show on this screen and in "
            "logs): give the bare address, and check the request's signature with the endpoint's secret."
        )
    # A host inside the deployment is refused here, with the reason (each delivery checks again).
    webhook_target_addresses(url, unresolved_ok=True)
    return url


def _same_receiver(url: str) -> tuple[str, str, int | None, str, str]:
    """What a webhook address names, as the request reaches it: the scheme and host in any case, the host with or
    without its root dot, the scheme's own port written or not, an empty path as "/". "https://Hooks.Example.com./x"
    and "https://hooks.example.com:443/x" are one receiver: two endpoints for it sent every event twice."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):  # an address IDNA cannot write is compared as typed
        host = host.encode("idna").decode("ascii")  # "bücher.example" is "xn--bcher-kva.example"
    port = parts.port if parts.port != {"http": 80, "https": 443}.get(scheme) else None
    return scheme, host, port, parts.path or "/", parts.query


def _audited(endpoint: WebhookEndpoint, action: str, by: User | None, **payload: Any) -> None:
    """In the audit log (``webhook_endpoint_changed``), inside the caller's transaction: the change and its record
    commit together. ``payload`` never holds the signing secret."""
    webhook_endpoint_changed.send(sender=WebhookEndpoint, endpoint=endpoint, action=action, by=by, payload=payload)


class WebhookEndpointExists(ModerationError):
    """The integration already has an endpoint at this URL (``existing``: the page to link to instead)."""

    def __init__(self, existing: WebhookEndpoint) -> None:
        self.existing = existing
        state = "" if existing.is_active else " (disabled: enable it there)"
        super().__init__(f"An endpoint for this URL already exists{state}: {existing.url_shown}.")


@transaction.atomic
def webhook_endpoint_create(
    *, integration: Integration, url: str, event_types: Any, only_own_videos: bool = True, by: User | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint with a fresh signing secret (returned, and readable by admins on its page). Recorded in the
    audit log (without the secret).

    One endpoint per URL per integration (``WebhookEndpointExists`` otherwise, a disabled one included): a second
    would be sent every event again, signed with another secret. "Add endpoint" pressed twice, or by two admins at
    once, both read "none yet" before either wrote; a transaction-level advisory lock on the integration makes the
    second wait for the first's commit and then find its endpoint. (Not a unique constraint: endpoints added twice
    before this exist and keep their deliveries; the lock needs no migration to clean them up first.)"""
    secret = "whsec_" + secrets.token_urlsafe(32)
    chosen = _clean_event_types(event_types)
    cleaned = _clean_url(url)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('moderation.webhook_endpoint_add'), %s)", [integration.pk]
        )
    receiver = _same_receiver(cleaned)
    existing = next(
        (
            e
            for e in WebhookEndpoint.objects.filter(integration=integration).order_by("pk")
            if _same_receiver(e.url) == receiver
        ),
        None,
    )
    if existing is not None:
        raise WebhookEndpointExists(existing)
    endpoint = WebhookEndpoint.objects.create(
        integration=integration,
        url=cleaned,
        event_types=chosen,
        only_own_videos=only_own_videos,
        secret=secret,
    )
    _audited(endpoint, "webhook.create", by, event_types=chosen, only_own_videos=only_own_videos)
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_events_set(
    *, endpoint: WebhookEndpoint, event_types: Any, only_own_videos: bool, by: User | None = None
) -> WebhookEndpoint:
    """Change which events an endpoint is sent (and whether only its integration's own videos'): from the next event
    on; deliveries already made keep going. Without it an endpoint subscribed to too much (every box is ticked when
    it is added) could only be disabled, and nothing else could be sent to that receiver. Recorded in the audit log
    with what it was before; saving the same choices again changes and records nothing (a form posted twice)."""
    chosen = _clean_event_types(event_types)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = {"event_types": list(locked.event_types), "only_own_videos": locked.only_own_videos}
    if before == {"event_types": chosen, "only_own_videos": only_own_videos}:
        return locked
    locked.event_types = chosen
    locked.only_own_videos = only_own_videos
    locked.save(update_fields=["event_types", "only_own_videos"])
    _audited(locked, "webhook.events_set", by, before=before, event_types=chosen, only_own_videos=only_own_videos)
    return locked


@transaction.atomic
def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, by: User | None = None) -> WebhookEndpoint:
    """Re-enable after a disable (by an admin or after too many failed attempts): the failure count restarts and
    the deliveries held meanwhile go out now (``webhook_deliveries_resume``). Recorded in the audit log, with the
    reason it had been disabled for."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    was = {"was_active": locked.is_active, "disabled_reason": locked.disabled_reason}
    locked.is_active = True
    locked.disabled_reason = ""
    locked.disabled_at = None
    locked.consecutive_failures = 0
    locked.save(update_fields=["is_active", "disabled_reason", "disabled_at", "consecutive_failures"])
    _audited(locked, "webhook.enable", by, **was)
    webhook_deliveries_resume(endpoint_ids=[locked.pk])
    return locked


def webhook_deliveries_resume(*, endpoint_ids: list[int]) -> list[int]:
    """Send now the deliveries held while these endpoints (or their integration) were off: those still waiting
    (pending, retrying, or sending with a lapsed lease: their sender was gone). Only the endpoints that are on and
    whose integration is on; returns the ids queued (after the caller's commit). Events that happened while an
    endpoint was off were never fanned out to it and are not sent."""
    now = timezone.now()
    held = WebhookDelivery.objects.filter(
        endpoint_id__in=endpoint_ids, endpoint__is_active=True, endpoint__integration__is_active=True
    ).filter(
        Q(status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING])
        | Q(status=WebhookDelivery.Status.SENDING, lease_expires_at__lte=now)
    )
    due = list(held.values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=due).exclude(status=WebhookDelivery.Status.SENDING).update(
        next_attempt_at=now
    )
    _send_deliveries(due)
    return due


@transaction.atomic
def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, by: User | None = None) -> WebhookEndpoint:
    """Stop sending to ``endpoint`` (its deliveries are held until it is enabled). Recorded in the audit log."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    was_active = locked.is_active
    locked.is_active = False
    locked.disabled_reason = reason[:500]
    locked.disabled_at = timezone.now()
    locked.save(update_fields=["is_active", "disabled_reason", "disabled_at"])
    _audited(locked, "webhook.disable", by, was_active=was_active, reason=locked.disabled_reason)
    return locked


@transaction.atomic
def webhook_endpoint_switch(
    *, endpoint: WebhookEndpoint, active: bool, by: User | None = None
) -> tuple[WebhookEndpoint, bool]:
    """Enable (``active``) or disable ``endpoint`` as its page's button asked, and whether that changed it: one
    already so (another admin, a second click, its failures disabled it since the page was drawn) is left as it is.
    The button flipped whatever the state was: a Disable clicked on a page drawn before the endpoint disabled itself
    (or posted twice) enabled it again and sent its held deliveries to a receiver an admin meant to cut off."""
    locked = WebhookEndpoint.objects.select_for_update().select_related("integration").get(pk=endpoint.pk)
    if locked.is_active == active:
        return locked, False
    if active:
        return webhook_endpoint_enable(endpoint=locked, by=by), True
    return webhook_endpoint_disable(endpoint=locked, reason=f"Disabled by {by}.", by=by), True


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery, by: User | None = None) -> WebhookDelivery:
    """Send a delivery again now (also a delivered one: receivers de-duplicate on the event id). Recorded in the
    audit log (an event's data sent to a receiver once more)."""
    locked = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint__integration")
        .get(pk=delivery.pk)
    )
    endpoint = locked.endpoint
    _refuse_while_off(endpoint, then="and its held deliveries go out")
    if (
        locked.status == WebhookDelivery.Status.SENDING
        and locked.lease_expires_at
        and locked.lease_expires_at > timezone.now()
    ):
        raise ModerationError("This delivery is being sent right now.")
    locked.status = WebhookDelivery.Status.PENDING
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=["status", "next_attempt_at", "updated_at"])
    _audited(endpoint, "webhook.redeliver", by, delivery=locked.pk, event=str(locked.event_id))
    _send_deliveries([locked.pk])
    return locked


def _refuse_while_off(endpoint: WebhookEndpoint, *, then: str) -> None:
    """Nothing is sent to an endpoint while it or its integration is switched off: say which, and what to do
    (``then`` ends the sentence: what follows switching it on)."""
    if not endpoint.integration.is_active:
        raise ModerationError(
            f"“{endpoint.integration.name}” is switched off: nothing is sent to its endpoints. Switch it on (on the "
            f"Integrations page) {then}."
        )
    if not endpoint.is_active:
        raise ModerationError(f"This endpoint is disabled: enable it on this page {then}.")


@transaction.atomic
def webhook_endpoint_test_send(*, endpoint: WebhookEndpoint, by: User | None = None) -> WebhookDelivery:
    """Queue one ``webhook.test`` event to ``endpoint`` alone, so a new receiver can be checked without waiting for
    a real event. It goes the way real events go: an outbox event (its id, created time) and one delivery row in
    the endpoint's log, sent by ``webhook_delivery_send`` (same signature, same address check, same retries). The
    event is marked dispatched at once: the fan-out never sends it to any other endpoint. Refused while the endpoint
    or its integration is off (it would only be held). Recorded in the audit log."""
    locked = WebhookEndpoint.objects.select_for_update().select_related("integration").get(pk=endpoint.pk)
    _refuse_while_off(locked, then="first, then send a test event")
    now = timezone.now()
    event = OutboxEvent.objects.create(
        type=TEST_EVENT_TYPE,
        payload={
            "test": True,
            "message": "A test event sent from the workbench's endpoint page: nothing happened to any video.",
        },
        dispatched_at=now,
    )
    delivery = WebhookDelivery.objects.create(endpoint=locked, event=event, next_attempt_at=now)
    _audited(locked, "webhook.test", by, delivery=delivery.pk, event=str(event.pk))
    _send_deliveries([delivery.pk])
    return delivery


# --- fan-out --------------------------------------------------------------------------------------


def outbox_dispatch(*, event_id: str | None = None, limit: int = 200) -> list[int]:
    """Turn undispatched outbox events into one delivery per subscribed active endpoint.

    Events are locked with SKIP LOCKED and marked dispatched in the same transaction, so two
    dispatchers (the after-commit task and the sweep) never fan one event out twice. The deliveries
    are queued after commit; returns their ids.
    """
    now = timezone.now()
    with transaction.atomic():
        qs = OutboxEvent.objects.select_for_update(skip_locked=True).filter(dispatched_at__isnull=True)
        qs = qs.filter(pk=event_id) if event_id else qs.order_by("created_at")[:limit]
        events = list(qs)
        if not events:
            return []
        # An integration switched off (its token refused) hears nothing more either.
        active = WebhookEndpoint.objects.filter(is_active=True, integration__is_active=True)
        endpoints = [e for e in active if e.event_types]
        video_ids = {e.video_id for e in events if e.video_id is not None}
        owners: set[tuple[int, int]] = set(
            IntegrationVideo.objects.filter(video_id__in=video_ids).values_list("integration_id", "video_id")
        )
        new = [
            WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=now)
            for event in events
            for endpoint in endpoints
            if event.type in endpoint.event_types
            and (
                not endpoint.only_own_videos
                or event.video_id is None
                or (endpoint.integration_id, event.video_id) in owners
            )
        ]
        created = WebhookDelivery.objects.bulk_create(new)
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
        ids = [d.pk for d in created]
        _send_deliveries(ids)
    return ids


def _send_deliveries(ids: list[int], countdown: float | None = None) -> None:
    """Queue the deliveries after the current commit (at once outside a transaction); a broker error
    is logged, not raised: the sweep re-queues what is overdue."""
    for pk in ids:
        enqueue(DELIVER_TASK, pk, robust=True, countdown=countdown)


def webhooks_sweep(*, grace_seconds: float | None = None) -> dict[str, int]:
    """The safety net (beat, every WEBHOOK_SWEEP_SECONDS): dispatch events whose after-commit task
    was lost, and queue deliveries that are overdue (their retry message lost, or their sender
    killed mid-send: the lease lapsed)."""
    grace = settings.WEBHOOK_SWEEP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    dispatched = 0
    while True:
        ids = outbox_dispatch(limit=500)
        dispatched += len(ids)
        if len(ids) < 500:
            break
    now = timezone.now()
    overdue = now - timedelta(seconds=grace)
    due = list(
        WebhookDelivery.objects.filter(endpoint__is_active=True, endpoint__integration__is_active=True)
        .filter(
            Q(
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
                next_attempt_at__lte=overdue,
            )
            | Q(status=WebhookDelivery.Status.SENDING, lease_expires_at__lte=now)
        )
        .values_list("pk", flat=True)[:5000]
    )
    _send_deliveries(due)
    return {"dispatched": dispatched, "requeued": len(due)}


# --- delivery -------------------------------------------------------------------------------------


def event_body(event: OutboxEvent, *, integration_id: int) -> bytes:
    """The JSON body of an event for an endpoint of ``integration_id``: the same bytes on every attempt.
    A video event names the video by the recipient's own external id, never another platform's, and no
    event names the workbench user who did it."""
    data = dict(event.payload)
    # Who reviewed stays inside: a platform is never told a moderator's user name (their safety).
    data.pop("by", None)
    if event.video_id is not None and "external_id" in data:
        data["external_id"] = external_id_for_recipient(
            integration_id=integration_id, video_id=event.video_id, shared=data["external_id"]
        )
    envelope = {"id": str(event.pk), "type": event.type, "created_at": event.created_at, "data": data}
    return json.dumps(envelope, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode()


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base·2^(n−1), capped, then a uniform draw in [½, 1] of it."""
    base = float(settings.WEBHOOK_RETRY_BASE_SECONDS)
    cap = float(settings.WEBHOOK_RETRY_MAX_SECONDS)
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return random.uniform(delay / 2, delay)


def webhook_delivery_send(*, delivery_id: int) -> str:
    """One attempt at one delivery; returns what happened. Safe to call twice: a delivered, failed,
    not-yet-due or in-flight delivery is left alone (row lock with SKIP LOCKED, then a lease)."""
    now = timezone.now()
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint__integration", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "busy"
        if delivery.status in (WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED):
            return "done"
        if (
            delivery.status == WebhookDelivery.Status.SENDING
            and delivery.lease_expires_at
            and delivery.lease_expires_at > now
        ):
            return "in-flight"
        if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
            return "not-due"
        if not delivery.endpoint.is_active or not delivery.endpoint.integration.is_active:
            return "endpoint-disabled"
        delivery.status = WebhookDelivery.Status.SENDING
        delivery.attempts += 1
        # Past the request timeout with room to record the result: then the sender is taken for dead.
        delivery.lease_expires_at = now + timedelta(seconds=2 * timeout + 5)
        delivery.save(update_fields=["status", "attempts", "lease_expires_at", "updated_at"])
    endpoint, event, attempt = delivery.endpoint, delivery.event, delivery.attempts

    body = event_body(event, integration_id=endpoint.integration_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "workbench-webhooks/1",
        "Workbench-Event-Id": str(event.pk),
        "Workbench-Event-Type": event.type,
        "Workbench-Delivery-Attempt": str(attempt),
        SIGNATURE_HEADER: signature_header(secret=endpoint.secret, body=body),
    }
    started = time.perf_counter()
    code: int | None = None
    try:
        # Resolved and checked again now (its DNS may have changed since it was added), then pinned.
        address = webhook_target_addresses(endpoint.url)[0]
        response = pinned_post(endpoint.url, address=address, data=body, headers=headers, timeout=timeout)
        code = response.status_code
        ok = 200 <= code < 300
        error = "" if ok else f"HTTP {code}"
    except WebhookTargetRefused as exc:
        ok, error = False, f"Not sent: {exc}"[:500]
    except requests.RequestException as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
    latency_ms = (time.perf_counter() - started) * 1000
    return _record_attempt(delivery_id, endpoint.pk, ok=ok, code=code, error=error, latency_ms=latency_ms)


@transaction.atomic
def _record_attempt(
    delivery_id: int, endpoint_id: int, *, ok: bool, code: int | None, error: str, latency_ms: float
) -> str:
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.last_status_code = code
    delivery.last_error = error
    delivery.last_latency_ms = latency_ms
    delivery.lease_expires_at = None
    if ok:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.save()
        WebhookEndpoint.objects.filter(pk=endpoint_id, consecutive_failures__gt=0).update(consecutive_failures=0)
        return "delivered"
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = int(settings.WEBHOOK_DISABLE_AFTER_FAILURES)
    disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True, consecutive_failures__gte=limit).update(
        is_active=False,
        disabled_at=now,
        # The count is of attempts (every delivery's retries included), not of deliveries.
        disabled_reason=f"Disabled after {limit} failed attempts in a row; the last: {error}"[:500],
    )
    if disabled:  # by the sender, not a person: in the audit log as an admin's disable is
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        _audited(endpoint, "webhook.auto_disable", None, reason=endpoint.disabled_reason)
    if delivery.attempts >= int(settings.WEBHOOK_MAX_ATTEMPTS):
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
        delivery.save()
        return "failed"
    delay = retry_delay(delivery.attempts)
    delivery.status = WebhookDelivery.Status.RETRYING
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.save()
    _send_deliveries([delivery_id], countdown=delay)
    return "retrying"
