"""The ops page for an admin (``/ops/``, its routing panel's htmx partial), on a library routed as the app routes it,
at a small and a large size: the routing-health numbers (stranded, inconsistently routed by kind, half-decided)
read every decision, review item and awaited row, so this is where they would grow with the library.

The library: decided videos, each decision with a pending item in the default queue (``seed_pending_tasks``), 5 %
in a group-restricted queue instead, 1 % awaited by a restricted queue naming its own model (flagged, no item yet:
routed, waiting on that model), and a few videos older code left inconsistent (``ORPHANS`` of each kind: a decision
no queue holds nor awaits, a pending item in a queue for another policy, an awaited row whose queue holds the item),
so the page's numbers are small and not the whole library. Each size is seeded on top of the one before, analysed.

``--before COMMIT`` times that commit's ``moderation/ops/selectors.py`` beside the working tree's, interleaved on
the same database (the indexes are the working tree's for both). Each sample: one request through Django's test
client, the first ``WARM_UP`` untimed; ``--explain`` prints EXPLAIN ANALYZE of each routing-health query at the
largest size.

    .venv/bin/python bench/ops_page.py [--sizes 2000 20000] [--rounds 5] [--before 8d3725c] [--explain]

The last line printed is one JSON object: ``ratio`` first (the page's median at the largest size ÷ at the
smallest, working tree), then per size and version the medians in ms, and the queries per page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at  # noqa: E402

WARM_UP = 2
ORPHANS = 20  # videos of each inconsistent kind


def _seed(n: int, *, world: dict[str, Any], label: str) -> None:
    from moderation.models import AwaitedQueueItem, Decision, ReviewTask, Video
    from tests.moderation.review.seeding import seed_pending_tasks

    pv = world["policy_version"]
    restricted_n, awaited_n = n // 20, n // 100
    seed_pending_tasks(n=n - restricted_n - awaited_n, queue=world["open"], policy_version=pv, title=f"Open {label}")
    seed_pending_tasks(n=restricted_n, queue=world["restricted"], policy_version=pv, title=f"Restricted {label}")
    # Awaited by the restricted queue's own model: flagged, no item yet (routing's state while that model decides).
    seed_pending_tasks(n=awaited_n, queue=world["open"], policy_version=pv, title=f"Awaited {label}")
    awaited = list(Decision.objects.filter(video__title__startswith=f"Awaited {label} "))
    ReviewTask.objects.filter(decision__in=awaited).delete()
    AwaitedQueueItem.objects.bulk_create([AwaitedQueueItem(decision=d, queue=world["awaiting"]) for d in awaited])
    Video.objects.filter(title__startswith=f"Awaited {label} ").update(routed_restricted=True)


def _seed_orphans(world: dict[str, Any]) -> None:
    """``ORPHANS`` videos of each kind older code left (``routing_orphans``), the newest rows."""
    from moderation.models import AwaitedQueueItem, Decision, ReviewTask
    from tests.moderation.review.seeding import seed_pending_tasks

    pv = world["policy_version"]
    for kind in ("unrouted", "other", "made"):
        seed_pending_tasks(n=ORPHANS, queue=world["open"], policy_version=pv, title=f"Orphan {kind}")
    ReviewTask.objects.filter(decision__video__title__startswith="Orphan unrouted ").delete()
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(decision=d, queue=world["other_policy"])
            for d in Decision.objects.filter(video__title__startswith="Orphan other ")
        ]
    )
    AwaitedQueueItem.objects.bulk_create(
        [
            AwaitedQueueItem(decision=d, queue=world["open"])
            for d in Decision.objects.filter(video__title__startswith="Orphan made ")
        ]
    )


def _world() -> dict[str, Any]:
    from django.contrib.auth.models import Group
    from django.test import Client

    from moderation.models import ModelVersion, ReviewQueue
    from moderation.review.services import review_queue_default
    from tests.factories import PolicyFactory, PolicyVersionFactory, UserFactory

    policy_version = PolicyVersionFactory()
    other = PolicyVersionFactory(policy=PolicyFactory(slug="other", name="Other", auto_apply=False))
    restricted = ReviewQueue.objects.create(name="Restricted", slug="restricted")
    restricted.allowed_groups.add(Group.objects.create(name="trust-and-safety"))
    own_model = ModelVersion.objects.create(name="queue-model", backend=ModelVersion.Backend.EVIDENCE_BASELINE)
    awaiting = ReviewQueue.objects.create(name="Seniors", slug="seniors", model_version=own_model)
    awaiting.allowed_groups.add(Group.objects.get(name="trust-and-safety"))
    other_policy = ReviewQueue.objects.create(name="Other policy", slug="other-policy", policy=other.policy)
    admin = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    return {
        "policy_version": policy_version,
        "open": review_queue_default(),
        "restricted": restricted,
        "awaiting": awaiting,
        "other_policy": other_policy,
        "client": client,
    }


def _explain() -> None:
    from django.db import connection
    from django.utils import timezone

    from moderation.inference.selectors import missing_decision_counts, videos_missing_auto_decision_counted
    from moderation.review import selectors as review

    queries: dict[str, Any] = {
        "stranded": review.videos_routing_stranded().values("pk"),
        "missing": videos_missing_auto_decision_counted().values("pk"),
        **{f"orphans_{k}": q for k, q in review.routing_orphans().items()},
        "orphaned_union": review.videos_routing_orphaned().values("pk"),
    }
    for name, qs in queries.items():
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        print(f"--- {name}: {plan[-1].strip()}\n" + "\n".join(plan[:-2]), flush=True)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as summary:
        review.routing_orphans_summary(first=10)
    for i, q in enumerate(summary.captured_queries):
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {q['sql']}")
            plan = [row[0] for row in cursor.fetchall()]
        print(f"--- summary query {i}: {plan[-1].strip()}\n" + "\n".join(plan[:-2]), flush=True)
    t0 = time.perf_counter()
    missing_decision_counts(now=timezone.now())
    print(f"--- missing_decision_counts: {(time.perf_counter() - t0) * 1000:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="", help="a commit whose ops selectors to time beside the working tree's")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    django_setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    from moderation.models import Video
    from moderation.ops import selectors as ops_after
    from moderation.ops import views as ops_views

    versions: dict[str, Any] = {"after": ops_after}
    if args.before:
        versions = {"before": module_at(args.before, "moderation/ops/selectors.py"), **versions}

    def use(name: str) -> None:
        ops_views.ops_dashboard = versions[name].ops_dashboard  # type: ignore[attr-defined]
        ops_views.ops_routing = versions[name].ops_routing  # type: ignore[attr-defined]

    screens = {"page": ("/ops/", {}), "routing_partial": ("/ops/routing-repair/failed/", {"HTTP_HX_REQUEST": "true"})}
    old = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"rounds": args.rounds}
    try:
        world = _world()
        client = world["client"]
        seeded = 0
        for i, size in enumerate(sorted(args.sizes)):
            t0 = time.perf_counter()
            _seed(size - seeded - (3 * ORPHANS if i == 0 else 0), world=world, label=str(size))
            if i == 0:
                _seed_orphans(world)
            seeded = size
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"{Video.objects.count()} videos seeded in {time.perf_counter() - t0:.1f} s", flush=True)
            for screen, (url, headers) in screens.items():
                samples: dict[str, list[float]] = {name: [] for name in versions}
                for round_ in range(args.rounds + WARM_UP):
                    for name in versions:
                        use(name)
                        t0 = time.perf_counter()
                        with CaptureQueriesContext(connection) as queries:
                            response = client.get(url, **headers)
                        assert response.status_code == 200, (url, response.status_code)
                        if round_ >= WARM_UP:
                            samples[name].append((time.perf_counter() - t0) * 1000)
                        result.setdefault(f"queries_{screen}", {})[name] = len(queries)
                row = {name: round(statistics.median(times), 1) for name, times in samples.items()}
                result[f"{screen}_{size}"] = row
                print(f"{size} {screen}: {row}", flush=True)
            if args.explain and size == max(args.sizes):
                use("after")
                _explain()
    finally:
        teardown_databases(old, verbosity=0)
    small, large = min(args.sizes), max(args.sizes)
    ratio = round(result[f"page_{large}"]["after"] / result[f"page_{small}"]["after"], 3)
    print(json.dumps({"ratio": ratio, **result}))


if __name__ == "__main__":
    main()
