"""Scrape-time Prometheus numbers read from the database (registered with workbench.metrics).

Every web process answers the same: nothing here lives in process memory. Counters are counts of
rows that only grow (completed reviews, decisions, deliveries); gauges are current states.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from moderation.inference.models import Decision
from moderation.integrations.models import OutboxEvent, WebhookDelivery
from moderation.media.models import Video
from moderation.ops.selectors import open_work_by_queue
from moderation.review.models import ReviewQueue, ReviewTask
from workbench.metrics import LATENCY_BUCKETS

MODEL_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 120.0)
WAITING = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING, WebhookDelivery.Status.SENDING)


def collect() -> Iterable[Metric]:
    yield from _queues()
    yield from _models()
    yield from _webhooks()
    yield from _media()


def _queues() -> Iterable[Metric]:
    now = timezone.now()
    queues = list(ReviewQueue.objects.values_list("pk", "slug"))
    open_rows = open_work_by_queue(now=now)
    done_rows: dict[int, dict[str, Any]] = {
        r["queue_id"]: dict(r)
        for r in ReviewTask.objects.filter(is_gold=False, status=ReviewTask.Status.DONE)
        .values("queue_id")
        .annotate(n=Count("id"), late=Count("id", filter=Q(completed_at__gt=F("deadline"))))
    }
    depth = GaugeMetricFamily("workbench_review_queue_depth", "Open review items", labels=["queue", "status"])
    age = GaugeMetricFamily(
        "workbench_review_queue_oldest_age_seconds", "Age of the oldest open item (0: empty)", labels=["queue"]
    )
    breached = GaugeMetricFamily(
        "workbench_review_sla_breached", "Open items past their SLA deadline", labels=["queue"]
    )
    completed = CounterMetricFamily("workbench_reviews_completed", "Review items done", labels=["queue"])
    missed = CounterMetricFamily(
        "workbench_review_sla_missed", "Review items done after their SLA deadline", labels=["queue"]
    )
    for pk, slug in queues:
        row: dict[str, Any] = open_rows.get(pk, {})
        depth.add_metric([slug, "pending"], row.get("pending", 0))
        depth.add_metric([slug, "claimed"], row.get("claimed", 0))
        oldest = row.get("oldest")
        age.add_metric([slug], (now - oldest).total_seconds() if oldest else 0.0)
        breached.add_metric([slug], row.get("breached", 0))
        done: dict[str, Any] = done_rows.get(pk, {})
        completed.add_metric([slug], done.get("n", 0))
        missed.add_metric([slug], done.get("late", 0))
    yield from (depth, age, breached, completed, missed)


def _models() -> Iterable[Metric]:
    aggregates = {f"le_{i}": Count("id", filter=Q(latency_ms__lte=b * 1000)) for i, b in enumerate(MODEL_BUCKETS)}
    rows = Decision.objects.values("model_version__name").annotate(
        n=Count("id"), total_ms=Sum("latency_ms"), **aggregates
    )
    latency = HistogramMetricFamily(
        "workbench_model_latency_seconds", "Model decision latency (all decisions)", labels=["model"]
    )
    for row in rows:
        r: dict[str, Any] = dict(row)
        buckets = [(str(b), r[f"le_{i}"]) for i, b in enumerate(MODEL_BUCKETS)] + [("+Inf", r["n"])]
        latency.add_metric([r["model_version__name"]], buckets, (r["total_ms"] or 0.0) / 1000)
    yield latency

    cascade = Decision.objects.filter(cascade_stage__isnull=False)
    totals = cascade.aggregate(n=Count("id"), escalated=Count("id", filter=Q(cascade_escalated=True)))
    decided = CounterMetricFamily("workbench_cascade_decisions", "Decisions that went through the cascade")
    decided.add_metric([], totals["n"])
    escalated = CounterMetricFamily("workbench_cascade_escalations", "Cascade decisions escalated to the VLM")
    escalated.add_metric([], totals["escalated"])
    recent = cascade.filter(created_at__gte=timezone.now() - timedelta(hours=1)).aggregate(
        n=Count("id"), escalated=Count("id", filter=Q(cascade_escalated=True))
    )
    rate = GaugeMetricFamily("workbench_cascade_escalation_rate", "Share escalated over the last hour (-1: none)")
    rate.add_metric([], recent["escalated"] / recent["n"] if recent["n"] else -1.0)
    yield from (decided, escalated, rate)


def _webhooks() -> Iterable[Metric]:
    now = timezone.now()
    by_status = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")))
    deliveries = GaugeMetricFamily("workbench_webhook_deliveries", "Webhook deliveries by status", labels=["status"])
    for status in WebhookDelivery.Status.values:
        deliveries.add_metric([status], by_status.get(status, 0))
    # A delivery to an endpoint or integration switched off is held (nothing is sent until it is on again): it is
    # counted on its own, and does not age the lag, which would otherwise page on-call for a platform's choice.
    sendable = Q(endpoint__is_active=True, endpoint__integration__is_active=True)
    waiting = WebhookDelivery.objects.filter(status__in=WAITING).aggregate(
        at=Min("event__created_at", filter=sendable), held=Count("id", filter=~sendable)
    )
    lag = GaugeMetricFamily(
        "workbench_webhook_delivery_lag_seconds",
        "Age of the oldest event not yet delivered to an active endpoint (0: none waiting; held ones not counted)",
    )
    lag.add_metric([], (now - waiting["at"]).total_seconds() if waiting["at"] else 0.0)
    held = GaugeMetricFamily(
        "workbench_webhook_deliveries_held",
        "Deliveries waiting because their endpoint or integration is switched off (sent once it is on again)",
    )
    held.add_metric([], waiting["held"])
    outbox = OutboxEvent.objects.filter(dispatched_at__isnull=True).aggregate(n=Count("id"), at=Min("created_at"))
    undispatched = GaugeMetricFamily("workbench_outbox_undispatched", "Outbox events not fanned out yet")
    undispatched.add_metric([], outbox["n"])
    outbox_age = GaugeMetricFamily("workbench_outbox_oldest_age_seconds", "Age of the oldest undispatched event")
    outbox_age.add_metric([], (now - outbox["at"]).total_seconds() if outbox["at"] else 0.0)
    yield from (deliveries, lag, held, undispatched, outbox_age)


def _media() -> Iterable[Metric]:
    missing = GaugeMetricFamily(
        "workbench_videos_missing_media",
        "Videos whose stored video, cover or keyframe images a screen last found missing from media storage",
    )
    missing.add_metric([], Video.objects.exclude(missing_media=[]).count())
    yield missing
