"""Claim latency with 16 concurrent reviewers at 1k and at 100k pending items, in one run.

Each of 16 threads (own DB connection) calls ``review_claim_next`` ``--claims`` times, submitting
each item between claims (the submit is not timed). Each queue is seeded with its size plus the
items the run consumes, so the pending count stays at the nominal size throughout. With
``--drain N`` it then drains N items with 16 claimers (claim + submit) and checks that no item was
given to two reviewers and none was lost. Runs on a throwaway test database.

    .venv/bin/python bench/queue_claim.py [--small 1000] [--large 100000] [--claims 40] [--drain 10000]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")

CLAIMERS = 16


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _measure(queue, users, claims_per_user: int) -> tuple[list[float], list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    from django.db import connection

    from moderation.review.services import review_claim_next, review_submit

    latencies: list[float] = []
    claimed: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def work(user) -> None:  # type: ignore[no-untyped-def]
        mine, got = [], []
        try:
            barrier.wait(60)
            for _ in range(claims_per_user):
                t0 = time.perf_counter()
                task = review_claim_next(user=user, queue=queue)
                mine.append((time.perf_counter() - t0) * 1000)
                if task is None:
                    break
                got.append((user.pk, task.pk))
                review_submit(task=task, user=user, verdict="approve")
        except BaseException as exc:
            errors.append(exc)
        finally:
            with lock:
                latencies.extend(mine)
                claimed.extend(got)
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies, claimed


def _claim_loop(queue_id: int, user_id: int, claims: int, barrier, out) -> None:  # type: ignore[no-untyped-def]
    """One reviewer process: its own DB connection, claims timed, submits untimed."""
    from django.contrib.auth.models import User
    from django.db import connection

    from moderation.review.models import ReviewQueue
    from moderation.review.services import review_claim_next, review_submit

    user, queue = User.objects.get(pk=user_id), ReviewQueue.objects.get(pk=queue_id)
    mine: list[float] = []
    got: list[tuple[int, int]] = []
    barrier.wait(60)
    for _ in range(claims):
        t0 = time.perf_counter()
        task = review_claim_next(user=user, queue=queue)
        mine.append((time.perf_counter() - t0) * 1000)
        if task is None:
            break
        got.append((user.pk, task.pk))
        review_submit(task=task, user=user, verdict="approve")
    connection.close()
    out.put((mine, got))


def _measure_processes(queue, users, claims_per_user: int) -> tuple[list[float], list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    """Like ``_measure`` with one OS process per reviewer (as separate web workers would be): no GIL shared."""
    import multiprocessing

    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()  # children must open their own connections, not share the parent's socket
    barrier, out = ctx.Barrier(len(users)), ctx.Queue()
    procs = [ctx.Process(target=_claim_loop, args=(queue.pk, u.pk, claims_per_user, barrier, out)) for u in users]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(60)
    latencies = [ms for mine, _ in results for ms in mine]
    claimed = [c for _, got in results for c in got]
    return latencies, claimed


def _explain(queue, user) -> str:  # type: ignore[no-untyped-def]
    """The plan of the claim statement itself (EXPLAIN without ANALYZE runs nothing)."""
    from django.db import connection
    from django.utils import timezone

    from moderation.review import services

    sql = services._CLAIM_SQL.format(not_mine="", columns=", ".join(f"t.{c}" for c in services._TASK_COLUMNS))
    now = timezone.now()
    params = {
        "superuser": False, "queue": queue.pk, "user": user.pk, "username": user.username, "slug": queue.slug,
        "exclude": [], "take_new": True, "now": now, "lease": now,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE moderation_reviewtask")
        cursor.execute("EXPLAIN " + sql, params)
        return " | ".join(row[0].strip() for row in cursor.fetchall())


def _queries_per_claim(queue, user) -> int:  # type: ignore[no-untyped-def]
    """Statements one claim sends (permissions already cached on the user, as within a request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation.review.services import review_claim_next, review_release

    user.has_perm("moderation.review_video")
    with CaptureQueriesContext(connection) as ctx:
        task = review_claim_next(user=user, queue=queue)
    review_release(task=task, user=user)
    return len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=40, help="claims per reviewer per size")
    parser.add_argument("--drain", type=int, default=0, help="also drain this many items with 16 claimers")
    parser.add_argument(
        "--processes", action="store_true", help="16 reviewer processes instead of 16 threads in one process"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    try:
        from moderation.review.models import Review, ReviewQueue, ReviewTask
        from tests.factories import PolicyVersionFactory, UserFactory
        from tests.moderation.review.seeding import seed_pending_tasks

        policy_version = PolicyVersionFactory()
        users = [UserFactory(role="moderator") for _ in range(CLAIMERS)]
        consumed = (CLAIMERS + 1) * args.claims + 6
        result: dict[str, object] = {
            "claimers": CLAIMERS,
            "claimer_kind": "processes" if args.processes else "threads",
            "claims_per_reviewer": args.claims,
        }
        all_claims: list[tuple[int, int]] = []
        plans = {}
        for label, size in (("1k", args.small), ("100k", args.large)):
            queue = ReviewQueue.objects.create(name=f"Bench {label}", slug=f"bench-{label}")
            t0 = time.perf_counter()
            seed_pending_tasks(n=size + consumed, queue=queue, policy_version=policy_version)
            print(f"seeded {size + consumed} items in {time.perf_counter() - t0:.1f} s", flush=True)
            plans[label] = _explain(queue, users[0])
            result[f"queries_per_claim_{label}"] = _queries_per_claim(queue, users[0])
            _measure(queue, users[:2], 3)  # warm-up: connections, caches
            measure = _measure_processes if args.processes else _measure
            latencies, claimed = measure(queue, users, args.claims)
            all_claims += claimed
            # One claimer alone: the claim's own cost, without 16 threads sharing 2 cores and a GIL.
            single, claimed = _measure(queue, users[:1], args.claims)
            all_claims += claimed
            result[f"single_p50_ms_{label}"] = round(statistics.median(single), 2)
            result[f"single_p99_ms_{label}"] = round(_pct(single, 0.99), 2)
            result[f"p50_ms_{label}"] = round(statistics.median(latencies), 2)
            result[f"p99_ms_{label}"] = round(_pct(latencies, 0.99), 2)
            result[f"claims_{label}"] = len(latencies)
            print(f"{label}: p50 {result[f'p50_ms_{label}']} ms, p99 {result[f'p99_ms_{label}']} ms", flush=True)
        for label, plan in plans.items():
            print(f"plan {label}: {plan}")
        per_task = Counter(task for _user, task in all_claims)
        result["double_claims"] = sum(1 for c in per_task.values() if c > 1)
        result["ratio"] = round(float(result["p99_ms_100k"]) / float(result["p99_ms_1k"]), 2)  # type: ignore[arg-type]
        result["index_scan"] = all("task_claim_order" in p for p in plans.values())

        if args.drain:
            from tests.moderation.review.test_concurrency import drain

            queue = ReviewQueue.objects.create(name="Drain", slug="drain")
            seed_pending_tasks(n=args.drain, queue=queue, policy_version=policy_version)
            before = Review.objects.count()
            t0 = time.perf_counter()
            claims, errors = drain(users, queue)
            per_task = Counter(task for _user, task in claims)
            result["drain_items"] = args.drain
            result["drain_s"] = round(time.perf_counter() - t0, 1)
            result["drain_errors"] = len(errors)
            result["drain_double_claims"] = sum(1 for c in per_task.values() if c > 1)
            result["drain_lost"] = args.drain - len(per_task)
            result["drain_reviews"] = Review.objects.count() - before
            result["drain_not_done"] = ReviewTask.objects.filter(queue=queue).exclude(status="done").count()
    finally:
        teardown_databases(old, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
