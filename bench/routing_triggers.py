"""What the ops page's routing triggers (``RoutingRecheck``, moderation 0071) cost the writes they watch: the same
writes timed with the ``routing_recheck_*`` triggers enabled and disabled, interleaved on one database.

The library: ``--size`` decided videos with a pending item each in the default queue (bulk, as
``seed_pending_tasks``), then the list the seeding filled emptied (as the beat's prune leaves it). Each round runs
every write below under each arm (``with``: the triggers enabled; ``without``: ``ALTER TABLE … DISABLE TRIGGER``
on each, committed before the arm's writes), alternating which arm goes first, the first ``WARM_UP`` rounds untimed;
each write runs in a transaction rolled back afterwards, so every sample sees the same library. ``--n`` rows a write:

- ``bulk_decide``: ``n`` videos decided and routed in bulk (videos, decisions and items: three INSERTs; the two
  statement triggers fire once each, with a transition table of ``n`` rows).
- ``one_by_one``: ``n`` videos decided and routed one at a time (three INSERTs a video: the statement triggers fire
  once per INSERT, as a worker deciding one video does).
- ``settle``: ``n`` videos leaving the media pipeline (``processing`` → ``ready``), one UPDATE each (a row trigger
  whose ``WHEN`` holds: the function runs).
- ``claim``: ``n`` pending items claimed, one UPDATE each (the row trigger's ``WHEN`` is false: no function).
- ``requeue``: ``n`` claimed items put back to pending, one UPDATE each (``WHEN`` holds: the function runs).
- ``delete_decisions``: the decisions of ``n`` videos deleted (and their items, by cascade), one DELETE.

    .venv/bin/python bench/routing_triggers.py [--size 20000] [--n 500] [--rounds 5]

The last line printed is one JSON object: per write and arm the median, min and max in ms, ``in_triggers`` (the
time spent in the ``routing_recheck_*`` functions, from ``pg_stat_xact_user_functions`` with ``track_functions =
'pl'``: the triggers' own cost, less noisy than the difference of two write times on a busy machine) with their
calls, and ``overhead``: per write, the median of ``with`` over ``without``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, spread  # noqa: E402

WARM_UP = 1


def _triggers(enabled: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'routing_recheck_%'")
        rows = cursor.fetchall()
        assert len(rows) == 15, rows  # every trigger of 0071
        for name, table in rows:
            cursor.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {name}")


def _in_functions() -> tuple[float, int]:
    """Time (ms) and calls of the ``routing_recheck_*`` functions not flushed to the statistics yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(total_time), 0), coalesce(sum(calls), 0) "
            "FROM pg_stat_xact_user_functions WHERE funcname LIKE 'routing_recheck%'"
        )
        total, calls = cursor.fetchone()
    return float(total), int(calls)


def _writes(n: int, queue: Any, policy_version: Any, model_version: Any) -> dict[str, Callable[[], float]]:
    """Each write: runs its untimed setup, then times the write itself; returns its ms."""
    from moderation.models import Decision, ReviewTask, Video
    from tests.moderation.review.seeding import seed_pending_tasks

    cot = [{"key": "final_judgment", "title": "Final judgment", "text": "ok", "evidence": []}]

    def bulk_decide() -> float:
        t0 = time.perf_counter()
        seed_pending_tasks(n=n, queue=queue, policy_version=policy_version, title="Timed")
        return (time.perf_counter() - t0) * 1000

    def one_by_one() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            video = Video.objects.create(title=f"One {i}", status=Video.Status.READY, duration=6.0)
            decision = Decision.objects.create(
                video=video,
                policy_version=policy_version,
                model_version=model_version,
                backend=model_version.backend,
                label="正向",
                cot=cot,
            )
            ReviewTask.objects.create(decision=decision, queue=queue)
        return (time.perf_counter() - t0) * 1000

    def settle() -> float:
        videos = Video.objects.bulk_create(
            [Video(title=f"In flight {i}", status=Video.Status.PROCESSING, duration=6.0) for i in range(n)]
        )
        t0 = time.perf_counter()
        for video in videos:
            Video.objects.filter(pk=video.pk).update(status=Video.Status.READY)
        return (time.perf_counter() - t0) * 1000

    def _items(status: str) -> list[int]:
        return list(ReviewTask.objects.filter(status=status).order_by("pk").values_list("pk", flat=True)[:n])

    def claim() -> float:
        ids = _items(ReviewTask.Status.PENDING)
        t0 = time.perf_counter()
        for pk in ids:
            ReviewTask.objects.filter(pk=pk).update(status=ReviewTask.Status.CLAIMED)
        return (time.perf_counter() - t0) * 1000

    def requeue() -> float:
        ids = _items(ReviewTask.Status.PENDING)
        ReviewTask.objects.filter(pk__in=ids).update(status=ReviewTask.Status.CLAIMED)
        t0 = time.perf_counter()
        for pk in ids:
            ReviewTask.objects.filter(pk=pk).update(status=ReviewTask.Status.PENDING)
        return (time.perf_counter() - t0) * 1000

    def delete_decisions() -> float:
        videos = list(Video.objects.order_by("-pk").values_list("pk", flat=True)[:n])
        t0 = time.perf_counter()
        Decision.objects.filter(video_id__in=videos).delete()
        return (time.perf_counter() - t0) * 1000

    return {
        "bulk_decide": bulk_decide,
        "one_by_one": one_by_one,
        "settle": settle,
        "claim": claim,
        "requeue": requeue,
        "delete_decisions": delete_decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    django_setup()
    from django.db import connection, transaction
    from django.test.utils import setup_databases, teardown_databases

    from moderation.models import ModelVersion
    from moderation.review.models import RoutingRecheck
    from moderation.review.services import review_queue_default
    from tests.factories import PolicyVersionFactory
    from tests.moderation.review.seeding import seed_pending_tasks

    old = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"size": args.size, "n": args.n, "rounds": args.rounds}
    try:
        policy_version = PolicyVersionFactory()
        queue = review_queue_default()
        t0 = time.perf_counter()
        seed_pending_tasks(n=args.size, queue=queue, policy_version=policy_version)
        model_version = ModelVersion.objects.get(name="evidence-baseline-v1")
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {RoutingRecheck._meta.db_table}")  # as the beat's prune leaves it
            cursor.execute("VACUUM ANALYZE")
        print(f"{args.size} decided videos seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        writes = _writes(args.n, queue, policy_version, model_version)
        samples: dict[tuple[str, str], list[float]] = {}
        listed: dict[tuple[str, str], int] = {}
        trigger_ms: dict[str, list[float]] = {}
        trigger_calls: dict[str, int] = {}
        with connection.cursor() as cursor:
            cursor.execute("SET track_functions = 'pl'")
        for round_ in range(args.rounds + WARM_UP):
            arms = ("with", "without") if round_ % 2 == 0 else ("without", "with")
            for arm in arms:
                _triggers(arm == "with")
                for name, write in writes.items():
                    with transaction.atomic():
                        # The triggers' functions' own time (``track_functions``): the cost measured where it is
                        # spent, not as the difference of two noisy write times. The view holds the backend's
                        # stats not flushed yet (earlier transactions' too): the write's are the difference.
                        before = _in_functions()
                        elapsed = write()
                        listed[(name, arm)] = RoutingRecheck.objects.count()
                        after = _in_functions()
                        in_triggers, calls = after[0] - before[0], after[1] - before[1]
                        transaction.set_rollback(True)
                    if round_ >= WARM_UP:
                        samples.setdefault((name, arm), []).append(elapsed)
                        if arm == "with":
                            trigger_ms.setdefault(name, []).append(float(in_triggers))
                            trigger_calls[name] = int(calls)
        _triggers(True)
        overhead: dict[str, float] = {}
        for name in writes:
            for arm in ("without", "with"):
                row = spread(samples[(name, arm)])
                result.setdefault(name, {})[arm] = row
                print(f"{name} {arm}: {row} ({listed[(name, arm)]} list rows written)", flush=True)
            overhead[name] = round(
                statistics.median(samples[(name, "with")]) / statistics.median(samples[(name, "without")]), 3
            )
            result[name]["list_rows"] = listed[(name, "with")]
            result[name]["in_triggers"] = {**spread(trigger_ms[name], 2), "calls": trigger_calls[name]}
            print(f"  {name}: in the triggers' functions {result[name]['in_triggers']}", flush=True)
        result = {"overhead": overhead, **result}
    finally:
        teardown_databases(old, verbosity=0)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
