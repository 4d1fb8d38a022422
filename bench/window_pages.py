"""What ``WindowPaginator``'s page costs, before and after its count stopped sorting: the list screens on it (the
pair queue, the reviewed pairs, ``/videos/`` and its page 2, the API's video list) for a moderator outside the
restricted queue's group and one in it, interleaved on one database.

"Before" is ``--before``'s ``WindowPaginator.page``, ``_ids`` and ``count`` set on this code's class (every screen
reads the class from ``workbench.pagination``): the page's ids and the count read as one list of 1,001 ids, a window
of 2,002 rows filtered and sorted. "After" is this code's: the page's ids from a window of about twice the page,
sorted, and the count over its own window filtered until 1,001 rows pass, unsorted.

The library is ``_common.restricted_library``'s (5 % restricted, 1 % routed before its item, the newest rows), each
size on top of the one before, with as many pairs as videos between random videos, a quarter of them reviewed. The
newest videos are hidden from both readers (the 1 % from the member too), so the video lists show the worst case
(the page's short window holds none of the list's rows; one read as far as the cap, as before); the pair lists,
between random videos, the usual one. Each screen's HTML is checked the same both ways before it is timed.

    .venv/bin/python bench/window_pages.py [--sizes 10000 20000] [--rounds 5] [--before 8d3725c]

The last line printed is one JSON object: per size, reader and screen the two medians in ms.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, interleaved_medians, module_at  # noqa: E402

WARM_UP = 3


def seed_pairs(n: int, *, reviewer: Any, rng: random.Random) -> None:
    """``n`` more pairs between random videos of the library (the later upload first), a quarter reviewed."""
    from moderation.media.models import Video
    from moderation.reproduction.models import PairReview, ReproCandidate

    ids = list(Video.objects.order_by("pk").values_list("pk", flat=True))
    seen = set(ReproCandidate.objects.values_list("video_id", "original_id"))
    fresh: set[tuple[int, int]] = set()
    while len(fresh) < n:
        a, b = rng.sample(ids, 2)
        if (max(a, b), min(a, b)) not in seen:
            fresh.add((max(a, b), min(a, b)))
    pairs = ReproCandidate.objects.bulk_create(
        [ReproCandidate(video_id=v, original_id=o, score=rng.random()) for v, o in sorted(fresh)], batch_size=5000
    )
    rng.shuffle(pairs)
    PairReview.objects.bulk_create(
        [
            PairReview(candidate=c, reviewer=reviewer, verdict=ReproCandidate.Label.REPRODUCTION)
            for c in pairs[: n // 4]
        ],
        batch_size=5000,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="8d3725c")
    args = parser.parse_args()

    django_setup()
    from _common import restricted_library, restricted_world
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse

    from tests.factories import UserFactory
    from workbench import pagination

    old = module_at(args.before, "workbench/pagination.py").WindowPaginator
    cls = pagination.WindowPaginator
    names = ("page", "_ids", "count")
    versions = {"before": {n: old.__dict__[n] for n in names}, "after": {n: cls.__dict__[n] for n in names}}

    def use(version: str) -> None:
        for name, attr in versions[version].items():
            setattr(cls, name, attr)

    db = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"rounds": args.rounds, "before": args.before}
    rng = random.Random(12)
    try:
        world = restricted_world()
        client = world[-1]
        admin = UserFactory(role="admin")
        member = UserFactory(role="moderator")
        member.groups.add(Group.objects.get(name="trust-and-safety"))
        member_client = Client()
        member_client.force_login(member)
        readers = {"outsider": client, "member": member_client}
        screens = {
            "pair_queue": reverse("moderation:repro_queue"),
            "pairs_reviewed": reverse("moderation:repro_reviewed"),
            "video_list": "/videos/",
            "video_list_page_2": "/videos/?page=2",
            "api_video_list": "/api/videos/",
        }
        paired = 0
        for _label, size in restricted_library(world, [(str(size), size) for size in args.sizes]):
            seed_pairs(size - paired, reviewer=admin, rng=rng)
            paired = size
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            for reader, reader_client in readers.items():
                for screen, url in screens.items():
                    bodies = []
                    for version in versions:  # the same page both ways (the masked CSRF token aside)
                        use(version)
                        bodies.append(
                            re.sub(
                                rb"[A-Za-z0-9]{64}",
                                b"",
                                reader_client.get(url).content,
                            )
                        )
                    if bodies[0] != bodies[1]:
                        import difflib

                        lines = [b.decode().splitlines() for b in bodies]
                        print("\n".join(list(difflib.unified_diff(*lines, lineterm=""))[:40]))
                        raise AssertionError((reader, screen))
                    row = interleaved_medians(reader_client, url, versions, use, rounds=args.rounds, warm_up=WARM_UP)
                    result[f"{size} {reader} {screen}"] = row
                    print(f"{size} {reader} {screen}: {row}", flush=True)
            use("after")
    finally:
        teardown_databases(db, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
