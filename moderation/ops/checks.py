"""The routing panel's two whole-library checks, kept for a short while (``OPS_ROUTING_CHECK_MAX_AGE_SECONDS``).

The videos with a decision no moderation queue holds nor awaits (``routing_orphans``' ``unrouted``: every decision
against every review item) and the half-decided videos (``videos_missing_auto_decision``: every settled video against
the decisions under each auto-applied policy) are anti-joins over the whole library: at 100,000 videos 250 and
90-250 ms of each load of ``/ops/`` and of its routing panel, the most of the page's database time, for figures that
older code or an edit of the policies left and that change by a repair, not from one minute to the next. Their
result (``RoutingChecks``) is kept in each process's own cache (Django's default, in memory) for the setting's
seconds, tagged with a *generation*: a token in Redis, shared by every web process, which each action of the ops
page that changes them (the repair, a retry, a dismiss; ``manage.py repair_routing``) replaces once it commits
(``ops_routing_checks_forget``), so every process checks again on its next load. The page says when the figures
were checked and offers to check now. With Redis unreachable a kept result is used for its time only.

The token is read before checking, so a result that raced an action is stored under the token the action replaced
and is never used.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache, caches
from django.db import transaction
from redis.exceptions import RedisError

from moderation.inference.selectors import MissingDecisionSummary, missing_decision_summary
from moderation.review.selectors import RoutingOrphanSummary, routing_orphans_summary
from workbench.redis_client import redis_paused, redis_unanswered

logger = logging.getLogger(__name__)

_GENERATION_KEY = "ops:routing-checks-gen"
UNKNOWN = "unknown"  # the generation when Redis does not answer: never equal to a stored token
SHOWN = 10  # the first ids of each kind the panel lists (``ops_routing``'s ``shown``)


@dataclass(frozen=True)
class RoutingChecks:
    """What the routing panel says of the inconsistently routed videos (``orphans``) and of the half-decided ones
    (``missing``), as found at ``checked_at``."""

    orphans: RoutingOrphanSummary
    missing: MissingDecisionSummary
    checked_at: datetime


def _kept_key(*, shown: int, dismissed: bool) -> str:
    return f"ops:routing-checks:{shown}:{'dismissed' if dismissed else 'failing'}"


def _generation() -> str:
    if redis_paused(alias="shared"):  # it timed out a moment ago: not waited for again on every load
        return UNKNOWN
    try:
        return str(caches["shared"].get(_GENERATION_KEY, ""))
    except (RedisError, OSError) as exc:
        redis_unanswered(alias="shared", exc=exc)
        logger.warning("Routing checks reused for their time only: the shared cache is unreachable (%s)", exc)
        return UNKNOWN


def ops_routing_checks(*, now: datetime, shown: int, dismissed: bool) -> RoutingChecks:
    """The routing panel's whole-library checks (``routing_orphans_summary``, ``missing_decision_summary``), as
    found at most ``OPS_ROUTING_CHECK_MAX_AGE_SECONDS`` before ``now`` and after the latest action that changed them
    (``ops_routing_checks_forget``); found now when none is kept (0: on every load)."""
    max_age = int(settings.OPS_ROUTING_CHECK_MAX_AGE_SECONDS)
    key = _kept_key(shown=shown, dismissed=dismissed)
    generation = _generation() if max_age > 0 else ""
    if max_age > 0:
        kept = cache.get(key)
        if (
            kept is not None
            and (generation == UNKNOWN or kept["generation"] == generation)
            and 0 <= (now - kept["checks"].checked_at).total_seconds() < max_age
        ):
            return kept["checks"]  # type: ignore[no-any-return]
    checks = RoutingChecks(
        orphans=routing_orphans_summary(first=shown),
        missing=missing_decision_summary(now=now, first=shown, dismissed=dismissed),
        checked_at=now,
    )
    if max_age > 0:
        cache.set(key, {"generation": generation, "checks": checks}, timeout=max_age)
    return checks


def ops_routing_checks_forget(*, at_once: bool = False) -> None:
    """Once the current transaction commits, every process checks routing again on its next load of the ops page.
    ``at_once``: now, whatever transaction is open (the page's "Check now", which changed nothing to wait for)."""

    def forget() -> None:
        try:
            # No expiry: a token that vanished would bring back results kept under the one before it.
            caches["shared"].set(_GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        except (RedisError, OSError) as exc:
            redis_unanswered(alias="shared", exc=exc)
            logger.warning("Routing checks not forgotten: the shared cache is unreachable (%s)", exc)
        # This process's own, at once, also when Redis did not answer (its result would be reused for its time).
        cache.delete_many([_kept_key(shown=SHOWN, dismissed=d) for d in (False, True)])

    if at_once:
        forget()
    else:
        transaction.on_commit(forget)
