"""Webhook tasks (default queue): thin wrappers around moderation.integrations.webhooks."""

from __future__ import annotations

from celery import shared_task

from moderation.integrations.webhooks import outbox_dispatch, webhook_delivery_send, webhooks_sweep
from workbench.queues import LONG_TASK_OPTIONS


@shared_task(name="moderation.integrations.tasks.dispatch_outbox_event", **LONG_TASK_OPTIONS)
def dispatch_outbox_event(event_id: str) -> int:
    """Fan one committed event out into deliveries (a no-op if the sweep already did)."""
    return len(outbox_dispatch(event_id=str(event_id)))


@shared_task(name="moderation.integrations.tasks.deliver_webhook", **LONG_TASK_OPTIONS)
def deliver_webhook(delivery_id: int) -> str:
    return webhook_delivery_send(delivery_id=int(delivery_id))


@shared_task(name="moderation.integrations.tasks.sweep_webhooks")
def sweep_webhooks() -> dict[str, int]:
    return webhooks_sweep()
