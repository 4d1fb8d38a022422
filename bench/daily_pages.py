"""Server time of the two daily pages whose per-card counts were folded into fewer statements: an admin's home (every
panel) and the operations page (``/ops/``), on a large library, before and after, interleaved on one database.

The library: ``--size`` videos, each decided with a pending item in the default queue (``seed_pending_tasks``), then
``--reviewed`` of those items done and reviewed over the last 14 days (a third of them today, by the measured admin),
one decision in ten from the cascade's stage (one in four of those escalated), ``--corrected`` CoT corrections (a
third drafts, the rest submitted, a fifth of each by the admin), 40 policy versions (drafts and publishes), 200
training jobs with a loss history of 2,000 steps each.

``--before COMMIT`` loads that commit's home panels (``moderation/home.py``, ``annotation/home.py``,
``training/home.py``) and ops selectors (``moderation/ops/selectors.py``, with that commit's
``missing_decision_rows``) beside the working tree's: each round requests each page under each version in turn,
the first ``WARM_UP`` rounds untimed. Each sample is one request through Django's test client (middleware, session,
templates; no network). The ops page before the change is timed twice: ``before`` reuses the routing panel's
whole-library checks for ``--check-max-age`` seconds (that commit's ``OPS_ROUTING_CHECK_MAX_AGE_SECONDS``, with its
``moderation/ops/checks.py``), as a running workbench did between two loads a minute apart, and ``before_cold``
checks on every load (0), as the first load after a repair or once the kept checks aged out. ``after`` (the working
tree since hops21) checks the videos listed as changed (``RoutingRecheck``) on every load; ``--changes N`` decides N
new videos before each of its loads (routed, as the services route: each listed, checked and dropped by the load).

    .venv/bin/python bench/daily_pages.py --before 2415647 [--size 100000] [--rounds 9] [--check-max-age 60]
        [--changes 20] [--prune-every 0]

Since a5e6f4a a load of the ops page only reads ``RoutingRecheck`` and the beat prunes it: after seeding (whose
routed decisions list every video) the beat's prune runs once; ``--prune-every N`` runs it again before every Nth
``after`` load (0: never, so the changes of every load before stay listed, as between two beats).

The last line printed is one JSON object: ``ratio`` (the ops page's median, ``after`` over ``before_cold``, when
``--before`` is given), then per page and version the median, min and max in ms, and the statements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at, spread  # noqa: E402

WARM_UP = 2
HOME_MODULES = ("moderation/home.py", "annotation/home.py", "training/home.py")
# The statements each fold replaced, told apart by what they read: their database time per request is summed per
# group (before: several statements; after: one), so a fold that made the SQL slower shows beside the page's time.
GROUPS = {
    "home": {
        "corrections": lambda sql: '"annotation_cotcorrection"' in sql,
        "policy_lists": lambda sql: (
            '"moderation_policyversion"' in sql and '"auth_user"' in sql and ("'draft'" in sql or "'published'" in sql)
        ),
        "training": lambda sql: '"training_trainingjob"' in sql,
        # Not folded (one statement read every item decided today, twice the time of the two): timed to show it.
        "today": lambda sql: 'FROM "moderation_review"' in sql and '"moderation_review"."reviewer_id" =' in sql,
    },
    "ops": {
        "series": lambda sql: "DATE_TRUNC" in sql,
        "reviews": lambda sql: sql.startswith('SELECT "moderation_review"."') and "DATE_TRUNC" not in sql,
        "awaited_kept": lambda sql: (
            "MIN(" in sql and ('"moderation_keptverdict"' in sql or '"moderation_awaitedqueueitem"."created_at"' in sql)
        ),
        # The routing panel's checks (``moderation.ops.checks``): the half-decided videos (the only statement naming
        # the media pipeline's statuses) and the inconsistently routed kinds (sorted by ``id + 0``); after: also the
        # prune of the changed videos' list.
        "routing_checks": lambda sql: "IN ('uploaded', 'processing')" in sql or " + 0)" in sql,
    },
}


def _seed(*, size: int, reviewed: int, corrected: int) -> Any:
    from django.utils import timezone

    from annotation.models import CotCorrection
    from moderation.models import Decision, PolicyVersion, Review, ReviewTask
    from moderation.review.services import review_queue_default
    from tests.factories import PolicyVersionFactory, UserFactory
    from tests.moderation.review.seeding import seed_pending_tasks
    from training.models import PreferenceDataset, TrainingJob
    from workbench.roles import sync_role_groups

    sync_role_groups()
    admin = UserFactory(role="admin")
    labeler = UserFactory(role="labeler")
    policy_version = PolicyVersionFactory()
    for n in range(40):
        PolicyVersionFactory(
            policy=policy_version.policy,
            status=PolicyVersion.Status.DRAFT if n % 2 else PolicyVersion.Status.PUBLISHED,
            is_active=False,
        )
    seed_pending_tasks(n=size, queue=review_queue_default(), policy_version=policy_version)
    now = timezone.now()
    decisions = list(Decision.objects.order_by("pk").values_list("pk", flat=True))
    Decision.objects.filter(pk__in=decisions[::10]).update(cascade_stage=1)
    Decision.objects.filter(pk__in=decisions[::40]).update(cascade_escalated=True)
    tasks = list(ReviewTask.objects.order_by("pk").select_related("decision")[:reviewed])
    reviews = []
    for i, task in enumerate(tasks):
        at = now - timedelta(days=0 if i % 3 == 0 else i % 14, minutes=i % 600)
        task.status, task.completed_at, task.claimed_at = ReviewTask.Status.DONE, at, at - timedelta(seconds=40)
        task.claimed_by = admin if i % 3 == 0 else labeler
        reviews.append(
            Review(
                task=task,
                decision=task.decision,
                reviewer=task.claimed_by,
                policy_version=policy_version,
                verdict=Review.Verdict.APPROVE if i % 4 else Review.Verdict.OVERRIDE,
                label="正向" if i % 4 else "引导私下交易",
            )
        )
    ReviewTask.objects.bulk_update(tasks, ["status", "completed_at", "claimed_at", "claimed_by"], batch_size=5000)
    Review.objects.bulk_create(reviews, batch_size=5000)
    for review in reviews:
        review.created_at = review.task.completed_at
    Review.objects.bulk_update(reviews, ["created_at"], batch_size=5000)
    stages = [{"key": "final_judgment", "title": "Final judgment", "text": "corrected", "evidence": []}]
    CotCorrection.objects.bulk_create(
        [
            CotCorrection(
                decision_id=pk,
                label="正向",
                status=CotCorrection.Status.DRAFT if i % 3 == 0 else CotCorrection.Status.SUBMITTED,
                author=admin if i % 5 == 0 else labeler,
                stages=stages,
            )
            for i, pk in enumerate(decisions[-corrected:])
        ],
        batch_size=5000,
    )
    dataset = PreferenceDataset.objects.create(name="pairs")
    statuses = list(TrainingJob.Status)
    history = [{"step": step, "loss": 0.5} for step in range(2000)]
    TrainingJob.objects.bulk_create(
        TrainingJob(dataset=dataset, status=statuses[n % len(statuses)], history=history) for n in range(200)
    )
    return admin


def _decide(n: int) -> None:
    """``n`` new videos decided and routed into the default queue, as the infer queue's workers leave them."""
    from moderation.models import PolicyVersion
    from moderation.review.services import review_queue_default
    from tests.moderation.review.seeding import seed_pending_tasks

    active = PolicyVersion.objects.filter(is_active=True).get()
    seed_pending_tasks(n=n, queue=review_queue_default(), policy_version=active, title="Decided since")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--reviewed", type=int, default=20_000)
    parser.add_argument("--corrected", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--before", default="", help="a commit whose home panels and ops selectors to time beside")
    parser.add_argument("--check-max-age", type=int, default=60, help="OPS_ROUTING_CHECK_MAX_AGE_SECONDS of 'before'")
    parser.add_argument("--changes", type=int, default=0, help="videos decided and routed before each 'after' load")
    parser.add_argument(
        "--prune-every",
        type=int,
        default=0,
        help="run the beat's prune before every Nth 'after' load (0: only once, after seeding)",
    )
    parser.add_argument(
        "--keep-seeded-list",
        action="store_true",
        help="no prune after seeding: every video stays listed (a bulk import, or a policy made auto-applied)",
    )
    args = parser.parse_args()

    django_setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    import annotation.home
    import moderation.home
    import training.home
    from moderation.ops import selectors as ops_after
    from moderation.ops import views as ops_views

    homes: dict[str, list[Any]] = {"after": [moderation.home, annotation.home, training.home]}
    ops: dict[str, Any] = {"after": ops_after}
    if args.before:
        old_homes = [module_at(args.before, path) for path in HOME_MODULES]
        homes = {"before": old_homes, "before_cold": old_homes, **homes}
        old_ops = module_at(args.before, "moderation/ops/selectors.py")
        old_inference = module_at(args.before, "moderation/inference/selectors.py")
        old_ops.missing_decision_rows = old_inference.missing_decision_rows
        # That commit's kept checks (a minute in each process), on the working tree's whole-library selectors.
        old_ops.ops_routing_checks = module_at(args.before, "moderation/ops/checks.py").ops_routing_checks
        ops = {"before": old_ops, "before_cold": old_ops, **ops}

    from moderation.ops.tasks import prune_routing_rechecks
    from moderation.review.models import RoutingRecheck

    after_loads = 0
    listed_at_load: list[int] = []

    def use(version: str) -> None:
        nonlocal after_loads
        for module in homes[version]:
            module.register()
        ops_views.ops_dashboard = ops[version].ops_dashboard  # type: ignore[attr-defined]
        settings.OPS_ROUTING_CHECK_MAX_AGE_SECONDS = args.check_max_age if version == "before" else 0
        if version == "after":
            # Since a5e6f4a a load only reads the list; the beat (every 5 min) prunes it.
            if args.prune_every and after_loads % args.prune_every == 0:
                prune_routing_rechecks()
            after_loads += 1
            if args.changes:
                _decide(args.changes)
            listed_at_load.append(RoutingRecheck.objects.values("video_id").distinct().count())

    pages = {"home": "/", "ops": "/ops/"}
    old = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"size": args.size, "rounds": args.rounds}
    try:
        t0 = time.perf_counter()
        admin = _seed(size=args.size, reviewed=args.reviewed, corrected=args.corrected)
        listed = RoutingRecheck.objects.values("video_id").distinct().count()
        # The seeding's routed decisions list every video: the beat's prune (every 5 min) would have emptied it.
        pruned = 0 if args.keep_seeded_list else prune_routing_rechecks()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded in {time.perf_counter() - t0:.1f} s; {listed} videos listed, {pruned} pruned", flush=True)
        client = Client()
        client.force_login(admin)
        samples: dict[tuple[str, str], list[float]] = {(p, v): [] for p in pages for v in homes}
        sql_ms: dict[tuple[str, str, str], list[float]] = {}
        for round_ in range(args.rounds + WARM_UP):
            for page, url in pages.items():
                for version in homes:
                    use(version)
                    t0 = time.perf_counter()
                    with CaptureQueriesContext(connection) as queries:
                        response = client.get(url)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert response.status_code == 200, (url, response.status_code)
                    result.setdefault(f"statements_{page}", {})[version] = len(queries)
                    if round_ >= WARM_UP:
                        samples[(page, version)].append(elapsed)
                        timed = [(q["sql"], float(q["time"]) * 1000) for q in queries.captured_queries]
                        sql_ms.setdefault((page, version, "all_sql"), []).append(sum(t for _, t in timed))
                        for group, belongs in GROUPS[page].items():
                            mine = [t for sql, t in timed if belongs(sql)]
                            sql_ms.setdefault((page, version, group), []).append(sum(mine))
                            result.setdefault(f"statements_{page}_{group}", {})[version] = len(mine)
        for (page, version), times in samples.items():
            row = spread(times)
            result.setdefault(f"{page}_ms", {})[version] = row
            print(f"{page} {version}: {row} ({result[f'statements_{page}'][version]} statements)", flush=True)
        for (page, version, group), times in sorted(sql_ms.items()):
            row = spread(times, 2)
            result.setdefault(f"{page}_sql_ms_{group}", {})[version] = row
            print(f"  {page} {version} SQL {group}: {row}", flush=True)
        if listed_at_load:
            result["listed_at_after_load"] = {"first": listed_at_load[0], "last": listed_at_load[-1]}
            print(f"videos listed at an 'after' load: {listed_at_load[0]} … {listed_at_load[-1]}", flush=True)
    finally:
        teardown_databases(old, verbosity=0)
    if args.before:
        result = {
            "ratio": round(result["ops_ms"]["after"]["median"] / result["ops_ms"]["before_cold"]["median"], 3),
            **result,
        }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
