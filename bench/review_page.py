"""Server time of the review screen and the queue list at 1k and at 100k videos, in one run.

Requests go through Django's test client (full middleware, templates, sessions; no network), on a
throwaway test database; the median of ``--repeats`` requests per page is reported. Each video has
a decision and a pending review task in the default queue.

The queue list reuses its counts for ``REVIEW_STATS_MAX_AGE_SECONDS`` (one live count per worker
process per period, not one per request or poll); ``queue_counts_live_ms_*`` is that live count's
own time, which grows with the queue.

    .venv/bin/python bench/review_page.py [--small 1000] [--large 100000] [--repeats 30]

The last line printed is one JSON object; ``ratio`` is the larger of the two pages' 100k/1k ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.review_page``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def _time(client, url: str, repeats: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        client.get(url)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        resp = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.status_code
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return statistics.median(samples), len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    django_setup()
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse

    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.db import connection

        from moderation.review.selectors import review_queue_overview
        from moderation.review.services import review_claim_next, review_queue_default
        from tests.factories import PolicyVersionFactory, UserFactory
        from tests.moderation.review.seeding import seed_pending_tasks

        policy_version = PolicyVersionFactory()
        queue = review_queue_default()
        user = UserFactory(role="moderator")
        client = Client()
        client.force_login(user)
        result: dict[str, object] = {"repeats": args.repeats}
        seeded = 0
        for label, size in (("1k", args.small), ("100k", args.large)):
            t0 = time.perf_counter()
            seed_pending_tasks(n=size - seeded, queue=queue, policy_version=policy_version, title=f"Video {label}")
            seeded = size
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"{size} videos seeded in {time.perf_counter() - t0:.1f} s", flush=True)
            task = review_claim_next(user=user, queue=queue)
            screen_ms, screen_q = _time(client, reverse("moderation:review_task", args=[task.pk]), args.repeats)
            list_ms, list_q = _time(client, reverse("moderation:queue"), args.repeats)
            result[f"review_screen_ms_{label}"] = round(screen_ms, 2)
            result[f"queue_list_ms_{label}"] = round(list_ms, 2)
            result[f"review_screen_queries_{label}"] = screen_q
            result[f"queue_list_queries_{label}"] = list_q
            # What the list reuses for REVIEW_STATS_MAX_AGE_SECONDS: the live count (grows with the queue).
            live = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                review_queue_overview(queues=[queue])
                live.append((time.perf_counter() - t0) * 1000)
            result[f"queue_counts_live_ms_{label}"] = round(statistics.median(live), 2)
            print(f"{label}: review screen {screen_ms:.1f} ms ({screen_q} q), queue list {list_ms:.1f} ms ({list_q} q)")
        result["ratio_review_screen"] = round(
            float(result["review_screen_ms_100k"]) / float(result["review_screen_ms_1k"]),
            2,  # type: ignore[arg-type]
        )
        result["ratio_queue_list"] = round(
            float(result["queue_list_ms_100k"]) / float(result["queue_list_ms_1k"]),
            2,  # type: ignore[arg-type]
        )
        result["ratio"] = max(result["ratio_review_screen"], result["ratio_queue_list"])  # type: ignore[type-var]
    finally:
        teardown_databases(old, verbosity=0)
    print(json.dumps({"ratio": result.pop("ratio", None), **result}))  # the ratio leads, as in every bench


if __name__ == "__main__":
    main()
