"""Bookkeeping of the queue list's reused counts (``selectors.review_queue_overview_recent``).

A queue's counts are kept in each process's own cache (Django's default, in memory) for up to
``REVIEW_STATS_MAX_AGE_SECONDS``, tagged with the queue's *generation*: a token in Redis, shared by
every web process and worker. A write that changes what a queue holds (an item routed into it,
escalated into or out of it, decided, skipped, released) calls ``review_queue_counts_forget``, which
replaces the queue's token once the write commits; every process's copy counted under the old token
is then no longer used. Claims do not forget: under load that would mean counting on every request
again, and a claim only makes the reused "pending" larger than the truth, never smaller.

The token is read before counting, so a count that raced a write is stored under the token the write
replaced and is never used. With Redis unreachable, counts are reused for their time only (logged).

The counts themselves are sums of ``ReviewQueueCount`` rows, which the database adds as items change;
``counts_fold`` keeps those rows few.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache, caches
from django.db import connection, transaction
from redis.exceptions import RedisError

from workbench.redis_client import redis_paused, redis_unanswered

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"  # the generation when Redis does not answer: never equal to a stored token


def _stats_key(queue_id: int) -> str:
    return f"review:queue-stats:{queue_id}"


def _generation_key(queue_id: int) -> str:
    return f"review:queue-gen:{queue_id}"


def counts_generations(queue_ids: Iterable[int]) -> dict[int, str]:
    """Each queue's current token (``""`` before its first forget), in one Redis round trip;
    ``UNKNOWN`` for all when Redis does not answer."""
    ids = list(queue_ids)
    if redis_paused(alias="shared"):  # it timed out a moment ago: not waited for again on every page
        return dict.fromkeys(ids, UNKNOWN)
    try:
        got = caches["shared"].get_many([_generation_key(pk) for pk in ids])
    except (RedisError, OSError) as exc:
        redis_unanswered(alias="shared", exc=exc)
        logger.warning("Queue counts reused for their time only: the shared cache is unreachable (%s)", exc)
        return dict.fromkeys(ids, UNKNOWN)
    return {pk: got.get(_generation_key(pk), "") for pk in ids}


def counts_cached(generations: dict[int, str]) -> dict[int, dict[str, Any]]:
    """The counts this process kept for these queues, where still of the queue's current generation
    (all kept ones while Redis does not answer: they age out in ``REVIEW_STATS_MAX_AGE_SECONDS``)."""
    kept = cache.get_many([_stats_key(pk) for pk in generations])
    found = {}
    for pk, generation in generations.items():
        entry = kept.get(_stats_key(pk))
        if entry is not None and (generation == UNKNOWN or entry["generation"] == generation):
            found[pk] = entry["stats"]
    return found


def counts_keep(counted: dict[int, dict[str, Any]], generations: dict[int, str], *, max_age: int) -> None:
    """Keep ``counted`` (queue id -> counts) for ``max_age`` seconds under the generations read before counting."""
    cache.set_many(
        {_stats_key(pk): {"generation": generations[pk], "stats": s} for pk, s in counted.items()}, timeout=max_age
    )


def review_queue_counts_forget(*, queue_ids: Iterable[int]) -> None:
    """Once the current transaction commits, every process stops reusing these queues' counts."""
    ids = sorted({int(pk) for pk in queue_ids if pk is not None})
    if not ids:
        return

    def forget() -> None:
        token = uuid.uuid4().hex
        try:
            # No expiry: a token that vanished would bring back counts kept under the one before it.
            caches["shared"].set_many({_generation_key(pk): token for pk in ids}, timeout=None)
        except (RedisError, OSError) as exc:
            redis_unanswered(alias="shared", exc=exc)
            logger.warning("Queue counts %s not forgotten: the shared cache is unreachable (%s)", ids, exc)

    transaction.on_commit(forget)


# A queue's count rows past which reading them folds them: a claim adds two rows, a decision two, so a busy queue is
# folded every few dozen items and its counts read from a few rows.
FOLD_AT = 64

# Each row is taken by one fold only (SKIP LOCKED: a fold never waits on another, nor on a writer, whose rows are
# not yet visible to it and are left for the next fold); what it took goes back as one row per key with the same sum,
# in the same statement, so every reader sees either the rows or their sum.
_FOLD_SQL = """
WITH taken AS (
    DELETE FROM moderation_reviewqueuecount c
    WHERE c.id IN (SELECT id FROM moderation_reviewqueuecount WHERE queue_id = ANY(%s) FOR UPDATE SKIP LOCKED)
    RETURNING c.queue_id, c.status, c.late, c.n
)
INSERT INTO moderation_reviewqueuecount (queue_id, status, late, n)
SELECT queue_id, status, late, sum(n) FROM taken GROUP BY 1, 2, 3 HAVING sum(n) <> 0
"""


def counts_fold(*, queue_ids: Iterable[int]) -> None:
    """Fold these queues' ``ReviewQueueCount`` rows into one per status and lateness; every sum stays the same."""
    ids = sorted({int(pk) for pk in queue_ids})
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_FOLD_SQL, [ids])
