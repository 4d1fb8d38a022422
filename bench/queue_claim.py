"""Claim latency with 16 concurrent reviewers at 1k and at 100k pending items, in one run.

16 claimers call ``review_claim_next`` ``--claims`` times each, submitting each item between
claims (the submit is not timed; ``--think-ms`` adds a reviewer's time on the item before it), as
16 OS processes (the headline: web workers are processes, each with its own connection) and then
as 16 threads of one process (``threads_*``: they also share one GIL). Each claimer's connection
is warmed by one untimed claim first, as a web worker's persistent connection is
(``CONN_MAX_AGE``); ``first_claim_max_ms_*`` reports that cold first claim apart. A single
claimer alone (``single_*``) gives the claim's own cost without 16 claimers sharing 2 cores.

Each queue is seeded with its size plus the items the run consumes, so the pending count stays at
the nominal size throughout. With ``--drain N`` it then drains N items with 16 claimers (claim +
submit) and checks that no item was given to two reviewers and none was lost. Runs on a throwaway
test database.

    .venv/bin/python bench/queue_claim.py [--small 1000] [--large 100000] [--claims 40] [--drain 10000]
        [--kinds processes,threads] [--think-ms 0]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.queue_claim``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

CLAIMERS = 16
SCHED = False  # --schedstat


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _warm_up(user, queue) -> float:  # type: ignore[no-untyped-def]
    """One untimed claim and release on this claimer's own connection, as a web worker's persistent
    connection (``CONN_MAX_AGE``) has done long before: the timed claims then measure the claim, not
    a new backend's first parse, plan and catalog loads (``first_claim_*`` reports those apart)."""
    from moderation.review.services import review_claim_next, review_release

    t0 = time.perf_counter()
    task = review_claim_next(user=user, queue=queue)
    elapsed = (time.perf_counter() - t0) * 1000
    if task is not None:
        review_release(task=task, user=user)
    return elapsed


def _think(think_ms: float) -> None:
    """The reviewer looking at the item: ``think_ms`` on average, spread ±50% so claimers drift apart."""
    if think_ms:
        time.sleep(random.uniform(0.5, 1.5) * think_ms / 1000)


def _schedstat(path: str) -> tuple[float, float]:
    """(ms on a CPU, ms runnable but waiting for one) of a thread or process so far (Linux ``schedstat``)."""
    with open(path) as f:
        on_cpu, waiting, _slices = f.read().split()
    return int(on_cpu) / 1e6, int(waiting) / 1e6


# Per claim with ``--schedstat``: wall ms, then the claimer's and its Postgres backend's CPU and run-queue ms.
SCHED_PARTS = ("wall", "claimer_cpu", "claimer_runqueue", "backend_cpu", "backend_runqueue")
_sched_rows: list[tuple[float, ...]] = []


def _claim_rounds(user, queue, claims: int, think_ms: float) -> tuple[list[float], list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    """One claimer's rounds: claim (timed), think, submit; ``claims`` times or until the queue is empty.

    Returns the claims' milliseconds and the (user, task) pairs claimed."""
    from django.db import connection

    from moderation.review.services import review_claim_next, review_submit

    timings: list[float] = []
    got: list[tuple[int, int]] = []
    backend = f"/proc/{connection.connection.info.backend_pid}/schedstat" if SCHED else ""
    for _ in range(claims):
        if SCHED:
            before = (*_schedstat("/proc/thread-self/schedstat"), *_schedstat(backend))
        t0 = time.perf_counter()
        task = review_claim_next(user=user, queue=queue)
        timings.append((time.perf_counter() - t0) * 1000)
        if SCHED:
            after = (*_schedstat("/proc/thread-self/schedstat"), *_schedstat(backend))
            _sched_rows.append((timings[-1], *(a - b for a, b in zip(after, before, strict=True))))
        if task is None:
            break
        got.append((user.pk, task.pk))
        _think(think_ms)
        review_submit(task=task, user=user, verdict="approve")
    return timings, got


Measured = tuple[list[float], list[tuple[int, int]], list[float]]  # timed claims, (user, task) claimed, first claims


def _ms(values: list[float], q: float) -> float:
    return round(_pct(values, q), 2)


def _sched_split(rows: list[tuple[float, ...]]) -> dict[str, dict[str, float]]:
    """Each part's median over all timed claims and over the slowest 2 % (the tail p99 reads from): where a slow
    claim's time went. Wall time not in the four parts is waiting on something else (a lock, I/O, the network)."""
    import statistics

    cut = _pct([r[0] for r in rows], 0.98)
    split = {}
    for name, chosen in (("all", rows), ("slowest_2pct", [r for r in rows if r[0] >= cut])):
        parts = {part: round(statistics.median(r[i] for r in chosen), 2) for i, part in enumerate(SCHED_PARTS)}
        rest = [r[0] - sum(r[1:]) for r in chosen]
        split[name] = {**parts, "other": round(statistics.median(rest), 2), "claims": len(chosen)}
    return split


def _measure(queue, users, claims_per_user: int, think_ms: float = 0.0) -> Measured:  # type: ignore[no-untyped-def]
    from django.db import connection

    latencies: list[float] = []
    claimed: list[tuple[int, int]] = []
    firsts: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def work(user) -> None:  # type: ignore[no-untyped-def]
        mine, got, first = [], [], []
        try:
            first.append(_warm_up(user, queue))
            barrier.wait(60)
            mine, got = _claim_rounds(user, queue, claims_per_user, think_ms)
        except BaseException as exc:
            errors.append(exc)
        finally:
            with lock:
                latencies.extend(mine)
                claimed.extend(got)
                firsts.extend(first)
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies, claimed, firsts


def _claim_loop(queue_id: int, user_id: int, claims: int, think_ms: float, barrier, out) -> None:  # type: ignore[no-untyped-def]
    """One reviewer process: its own DB connection, claims timed, submits untimed."""
    from django.contrib.auth.models import User
    from django.db import connection

    from moderation.review.models import ReviewQueue

    user, queue = User.objects.get(pk=user_id), ReviewQueue.objects.get(pk=queue_id)
    first = _warm_up(user, queue)
    barrier.wait(60)
    mine, got = _claim_rounds(user, queue, claims, think_ms)
    connection.close()
    out.put((mine, got, first, list(_sched_rows)))


def _measure_processes(queue, users, claims_per_user: int, think_ms: float = 0.0) -> Measured:  # type: ignore[no-untyped-def]
    """Like ``_measure`` with one OS process per reviewer (as separate web workers would be): no GIL shared."""
    import multiprocessing

    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()  # children must open their own connections, not share the parent's socket
    barrier, out = ctx.Barrier(len(users)), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_loop, args=(queue.pk, u.pk, claims_per_user, think_ms, barrier, out)) for u in users
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(60)
    latencies = [ms for mine, _, _, _ in results for ms in mine]
    claimed = [c for _, got, _, _ in results for c in got]
    _sched_rows.extend(row for _, _, _, rows in results for row in rows)
    return latencies, claimed, [first for _, _, first, _ in results]


def claim_statement(queue, user) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The claim statement for ``user`` in ``queue`` and its parameters, as a first claim sends them (also
    ``bench/claim_work.py``'s)."""
    from django.utils import timezone

    from moderation.review import selectors, services

    open_video, open_params = selectors.review_open_video_clause(user=user)
    now = timezone.now()
    params = {
        "superuser": False, "queue": queue.pk, "user": user.pk, "username": user.username, "slug": queue.slug,
        "exclude": [], "take_new": True, "now": now, "lease": now, "commit_async": False, **open_params,
    }  # fmt: skip
    return services._claim_sql(queue=queue, open_video=open_video), params


def _explain(queue, user) -> str:  # type: ignore[no-untyped-def]
    """The plan of the claim statement itself (EXPLAIN without ANALYZE runs nothing)."""
    from django.db import connection

    sql, params = claim_statement(queue, user)
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
        "--kinds",
        default="processes,threads",
        help="claimer kinds to measure, the first one headlines (p50/p99/ratio); the others get a prefix",
    )
    parser.add_argument("--think-ms", type=float, default=0.0, help="reviewer's time on an item before submitting")
    parser.add_argument(
        "--schedstat",
        action="store_true",
        help="split each timed claim into the claimer's and its backend's CPU and run-queue time (Linux)",
    )
    args = parser.parse_args()
    global SCHED
    SCHED = args.schedstat

    django_setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    try:
        from moderation.review.models import Review, ReviewQueue, ReviewTask
        from tests.factories import PolicyVersionFactory, UserFactory
        from tests.moderation.review.seeding import seed_pending_tasks

        policy_version = PolicyVersionFactory()
        users = [UserFactory(role="moderator") for _ in range(CLAIMERS)]
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        if not kinds or set(kinds) - {"processes", "threads"}:
            parser.error("--kinds takes processes and/or threads")
        consumed = (CLAIMERS * len(kinds) + 1) * args.claims + 6
        result: dict[str, object] = {
            "claimers": CLAIMERS,
            "claimer_kind": kinds[0],
            "claims_per_reviewer": args.claims,
            "think_ms": args.think_ms,
        }
        all_claims: list[tuple[int, int]] = []
        plans = {}
        for label, size in (("1k", args.small), ("100k", args.large)):
            queue = ReviewQueue.objects.create(name=f"Bench {label}", slug=f"bench-{label}")
            t0 = time.perf_counter()
            seed_pending_tasks(n=size + consumed, queue=queue, policy_version=policy_version)
            print(f"seeded {size + consumed} items in {time.perf_counter() - t0:.1f} s", flush=True)
            # A queue fills over days with autovacuum keeping up; one bulk load of videos, decisions and
            # tasks leaves hint bits and visibility maps unset and autovacuum due on those tables in the
            # middle of the measurement. Start from the steady state instead.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
            plans[label] = _explain(queue, users[0])
            result[f"queries_per_claim_{label}"] = _queries_per_claim(queue, users[0])
            _measure(queue, users[:2], 3)  # warm-up: connections, caches
            for i, kind in enumerate(kinds):
                _sched_rows.clear()
                if kind == "processes":
                    latencies, claimed, firsts = _measure_processes(queue, users, args.claims, args.think_ms)
                else:
                    latencies, claimed, firsts = _measure(queue, users, args.claims, args.think_ms)
                all_claims += claimed
                prefix = "" if i == 0 else f"{kind}_"
                result[f"{prefix}p50_ms_{label}"] = _ms(latencies, 0.5)
                result[f"{prefix}p99_ms_{label}"] = _ms(latencies, 0.99)
                result[f"{prefix}claims_{label}"] = len(latencies)
                result[f"{prefix}first_claim_max_ms_{label}"] = round(max(firsts), 2)
                if SCHED:
                    result[f"{prefix}sched_{label}"] = _sched_split(_sched_rows)
                print(f"{label} {kind}: p50 {_ms(latencies, 0.5)} ms, p99 {_ms(latencies, 0.99)} ms", flush=True)
            # One claimer alone: the claim's own cost, without 16 threads sharing 2 cores and a GIL.
            single, claimed, _ = _measure(queue, users[:1], args.claims)
            all_claims += claimed
            result[f"single_p50_ms_{label}"] = _ms(single, 0.5)
            result[f"single_p99_ms_{label}"] = _ms(single, 0.99)
        for label, plan in plans.items():
            print(f"plan {label}: {plan}")
        per_task = Counter(task for _user, task in all_claims)
        result["double_claims"] = sum(1 for c in per_task.values() if c > 1)
        result["ratio"] = round(float(result["p99_ms_100k"]) / float(result["p99_ms_1k"]), 2)  # type: ignore[arg-type]
        for kind in kinds[1:]:
            ratio = float(result[f"{kind}_p99_ms_100k"]) / float(result[f"{kind}_p99_ms_1k"])  # type: ignore[arg-type]
            result[f"{kind}_ratio"] = round(ratio, 2)
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
    # The last line leads with the ratio, as every bench's does.
    print(json.dumps({"ratio": result.pop("ratio", None), **result}))


if __name__ == "__main__":
    main()
