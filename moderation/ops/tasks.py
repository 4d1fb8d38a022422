"""The ops page's beat work."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="moderation.ops.tasks.prune_routing_rechecks")
def prune_routing_rechecks() -> int:
    """Beat, every 5 min: drop the ``RoutingRecheck`` rows of videos consistent now (``routing_recheck_prune``; how
    many videos is returned), so
    the list stays the inconsistent videos and a few minutes of changes even when nobody opens the ops page (each
    routed decision lists its video): a load after a quiet week checks minutes of changes, not the week's."""
    from moderation.ops.checks import routing_recheck_prune

    return len(routing_recheck_prune())
