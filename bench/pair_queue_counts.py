"""What the pair queue's heading counts (waiting, claimed, reviewed pairs a reader may open) cost, before and after
this branch, for three readers: an admin (sees every video), a moderator outside the restricted queue's group and
one in it, on ``_common.restricted_library``'s library with as many reproduction pairs as videos.

The pairs join random videos of the library (5 % of it restricted, 1 % routed before its item, a few undecided
uploads), scores uniform in [0, 1): about 70 % at or above the queue's threshold; a quarter of all pairs reviewed
(their claim kept, lease cleared, as a verdict leaves it), 20 pairs under a live claim, 200 under a lapsed one.

Per reader: the median of ``--rounds`` calls of the old ``pair_queue_stats`` (``--before``'s, the three counts over
every pair with the rule) and of this code's heading counts, interleaved; the median of the whole pair queue page
through Django's test client with each; then each old count's statement under ``EXPLAIN (ANALYZE, SUMMARY)``
(printed with ``--plans``, with this code's statements as they ran). For the outsider also the video page's pairs
section and the review screen's re-upload line (``video_pairs_strongest``, ``video_reupload_pairs``) on a video in
300 pairs ("hub") and on a typical one, and whether their statement, planned afresh, reads the rule's sets over the
whole library (``whole_table``) or probes its rows one by one.

    .venv/bin/python bench/pair_queue_counts.py [--size 10000] [--rounds 5] [--before e14af78] [--plans]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at  # noqa: E402

WARM_UP = 3


def seed_pairs(n: int, *, reviewer: Any, claimer: Any) -> None:
    from django.utils import timezone

    from moderation.media.models import Video
    from moderation.reproduction.models import PairReview, ReproCandidate

    rng = random.Random(12)
    ids = list(Video.objects.order_by("pk").values_list("pk", flat=True))
    seen: set[tuple[int, int]] = set()
    while len(seen) < n:
        a, b = rng.sample(ids, 2)
        seen.add((max(a, b), min(a, b)))  # the later upload first
    now = timezone.now()
    pairs = ReproCandidate.objects.bulk_create(
        [ReproCandidate(video_id=v, original_id=o, score=rng.random()) for v, o in sorted(seen)], batch_size=5000
    )
    hub = ids[len(ids) // 2]  # a video with many later copies: the video page's pairs section at its largest
    ReproCandidate.objects.bulk_create(
        [ReproCandidate(video_id=v, original_id=hub, score=0.5 + rng.random() / 2) for v in ids[-300:]],
        ignore_conflicts=True,
    )
    rng.shuffle(pairs)
    reviewed, live, lapsed = pairs[: n // 4], pairs[n // 4 : n // 4 + 20], pairs[n // 4 + 20 : n // 4 + 220]
    PairReview.objects.bulk_create(
        [PairReview(candidate=c, reviewer=reviewer, verdict=ReproCandidate.Label.REPRODUCTION) for c in reviewed],
        batch_size=5000,
    )
    ReproCandidate.objects.filter(pk__in=[c.pk for c in reviewed]).update(claimed_by=reviewer, claimed_at=now)
    ReproCandidate.objects.filter(pk__in=[c.pk for c in live]).update(
        claimed_by=claimer, claimed_at=now, lease_expires_at=now + timedelta(minutes=20)
    )
    ReproCandidate.objects.filter(pk__in=[c.pk for c in lapsed]).update(
        claimed_by=claimer, claimed_at=now - timedelta(hours=1), lease_expires_at=now - timedelta(minutes=40)
    )


def _explain(qs: Any) -> tuple[float, float, str]:
    """Planning and execution ms of ``qs.count()``'s statement, planned afresh, and its plan."""
    from django.db import connection

    from workbench.db import PREPARE_MARK

    qs = qs.order_by()  # as ``count()`` runs it
    sql, params = qs.query.chain().get_compiler(qs.db).as_sql()
    sql = f"SELECT COUNT(*) FROM ({sql}) counted".replace(PREPARE_MARK, "")
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, SUMMARY) {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    planning = float(plan.split("Planning Time: ")[1].split(" ms")[0])
    execution = float(plan.split("Execution Time: ")[1].split(" ms")[0])
    return planning, execution, plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="e14af78")
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()

    django_setup()
    from _common import restricted_library, restricted_world
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse
    from django.utils import timezone

    from moderation.media.models import Video
    from moderation.reproduction import selectors
    from moderation.reproduction.models import ReproCandidate
    from tests.factories import UserFactory

    old = module_at(args.before, "moderation/reproduction/selectors.py")
    new_stats = selectors.pair_queue_stats
    versions = {
        "before": lambda *, user, **_: old.pair_queue_stats(user=user),
        "after": new_stats,
    }

    db = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"size": args.size, "rounds": args.rounds}
    try:
        world = restricted_world()
        _pv, _open, _restricted, moderator, colleague, outsider_client = world
        for _ in restricted_library(world, [("lib", args.size)]):
            pass
        admin = UserFactory(role="admin")
        member = UserFactory(role="moderator")
        member.groups.add(Group.objects.get(name="trust-and-safety"))
        t0 = time.perf_counter()
        seed_pairs(args.size, reviewer=admin, claimer=colleague)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"{ReproCandidate.objects.count()} pairs seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        ids_sample = ReproCandidate.objects.order_by("pk").values_list("video_id", flat=True)[7]
        readers = {"admin": admin, "outsider": moderator, "member": member}
        url = reverse("moderation:repro_queue")
        for name, reader in readers.items():
            client = outsider_client if reader is moderator else Client()
            client.force_login(reader)
            counts = {v: dict(fn(user=reader)) for v, fn in versions.items()}
            print(f"{name}: counts {counts}", flush=True)
            samples: dict[str, list[float]] = {f"{k}_{v}": [] for k in ("stats", "page") for v in versions}
            for round_ in range(args.rounds + WARM_UP):
                for version, fn in versions.items():
                    t0 = time.perf_counter()
                    fn(user=reader)
                    spent = (time.perf_counter() - t0) * 1000
                    selectors.pair_queue_stats = fn  # the view reads it from the module
                    t1 = time.perf_counter()
                    assert client.get(url).status_code == 200
                    page = (time.perf_counter() - t1) * 1000
                    selectors.pair_queue_stats = new_stats
                    if round_ >= WARM_UP:
                        samples[f"stats_{version}"].append(spent)
                        samples[f"page_{version}"].append(page)
            row = {key: round(statistics.median(times), 1) for key, times in samples.items()}
            # The old counts' statements, each planned afresh.
            waiting = old.pairs_open_to(
                user=reader,
                pairs=ReproCandidate.objects.filter(score__gte=old.PAIR_QUEUE_THRESHOLD, review__isnull=True),
            )
            statements = {
                "pending": old.pairs_open_to(user=reader, pairs=old.pair_queue_pending()),
                "claimed": waiting.filter(claimed_by__isnull=False, lease_expires_at__gte=timezone.now()),
                "reviewed": old.pairs_open_to(user=reader, pairs=old.pairs_reviewed()),
            }
            for count, qs in statements.items():
                planning, execution, plan = _explain(qs)
                row[f"old_{count}_plan_ms"], row[f"old_{count}_exec_ms"] = round(planning, 1), round(execution, 1)
                if args.plans:
                    print(f"--- {name} {count}\n{plan}", flush=True)
            if name == "outsider":  # the video page's pairs section and the review screen's re-upload line
                hub = ReproCandidate.objects.values("original_id").annotate(n=Count("id")).order_by("-n")[0]
                for which, video_id in (("hub", hub["original_id"]), ("typical", ids_sample)):
                    video = Video.objects.get(pk=video_id)
                    for fn_name in ("video_pairs_strongest", "video_reupload_pairs"):
                        fn = getattr(selectors, fn_name)
                        times = []
                        for _ in range(args.rounds + WARM_UP):
                            t0 = time.perf_counter()
                            fn(video=video, user=reader)
                            times.append((time.perf_counter() - t0) * 1000)
                        row[f"{fn_name}_{which}_ms"] = round(statistics.median(times[WARM_UP:]), 1)
                    planning, execution, plan = _explain(selectors.pairs_of_video(video=video, user=reader))
                    row[f"video_pairs_{which}_exec_ms"] = round(execution, 1)
                    # Whole-table reads: the rule's sets hashed over the library, not its rows probed one by one.
                    row[f"video_pairs_{which}_whole_table"] = "Seq Scan on moderation_decision" in plan
                    if args.plans:
                        print(f"--- video pairs {which}\n{plan}", flush=True)
            if args.plans:  # this code's statements, as run (values in), planned afresh
                from django.test.utils import CaptureQueriesContext

                with CaptureQueriesContext(connection) as ran:
                    new_stats(user=reader)
                for query in ran.captured_queries:
                    with connection.cursor() as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, SUMMARY) " + query["sql"])
                        plan = "\n".join(r[0] for r in cursor.fetchall())
                    print(f"--- {name} new\n{query['sql'][:300]}\n{plan}", flush=True)
            result[name] = row
            print(f"{name}: {row}", flush=True)
    finally:
        teardown_databases(db, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
