"""The list screens that apply the visibility rule (``/videos/`` and its pages 2 and 30, the API's video list, its
decision list and that list's next page), for a moderator outside the restricted queue's group, paged by Django's
and DRF's paginators ("before") and by ``workbench/pagination.py``'s ("after"), interleaved on one database.

The library is ``bench/visibility_screens.py``'s (``_common.restricted_library``): decided videos, 5 % routed to a group-restricted queue only and
1 % routed there before their item was made, seeded last (the newest rows: the windows' worst case), a few uploads
not decided yet. Each size is seeded on top of the one before. For each screen: the median of ``--rounds``
requests per version through Django's test client, the first ``WARM_UP`` untimed (prepared statements).

    .venv/bin/python bench/list_screens.py [--sizes 1000 20000] [--rounds 8]

The last line printed is one JSON object: ``ratio`` (after ÷ before of the screens' medians summed, at the largest
size), then per size and screen the two medians in ms.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, interleaved_medians  # noqa: E402

WARM_UP = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20_000])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    django_setup()
    from _common import restricted_library, restricted_world
    from django.core.paginator import Paginator
    from django.test.utils import setup_databases, teardown_databases
    from rest_framework.pagination import CursorPagination, PageNumberPagination

    from moderation.api import views as api_views
    from moderation.media import views as media_views
    from workbench.pagination import WindowPageNumberPagination, WindowPaginator

    class DjangosPaginator(Paginator):  # type: ignore[type-arg]
        count_is_exact = True  # what the video list's pager reads

    cursor_after = api_views.DecisionViewSet.pagination_class
    cursor_before = type("DrfCursor", (cursor_after,), {"paginate_queryset": CursorPagination.paginate_queryset})
    versions = {
        "before": (DjangosPaginator, PageNumberPagination, cursor_before),
        "after": (WindowPaginator, WindowPageNumberPagination, cursor_after),
    }

    def use(name: str) -> None:
        html, api, cursor = versions[name]
        media_views.WindowPaginator = html  # type: ignore[misc]
        api_views.VideoViewSet.pagination_class = api
        api_views.DecisionViewSet.pagination_class = cursor

    old = setup_databases(verbosity=0, interactive=False)
    try:
        world = restricted_world()
        client = world[-1]
        result: dict[str, Any] = {"rounds": args.rounds}
        for _label, size in restricted_library(world, [(str(size), size) for size in args.sizes]):
            use("after")
            next_decisions = client.get("/api/decisions/").json()["next"]
            screens = {
                "video_list": "/videos/",
                "video_list_page_2": "/videos/?page=2",
                "video_list_page_30": "/videos/?page=30",
                "api_video_list": "/api/videos/",
                "api_decision_list": "/api/decisions/",
                "api_decision_list_next": next_decisions,
            }
            for screen, url in screens.items():
                if not url:
                    continue
                row = interleaved_medians(client, url, versions, use, rounds=args.rounds, warm_up=WARM_UP)
                result[f"{screen}_{size}"] = row
                sums = result.setdefault("sums", {}).setdefault(size, {name: 0.0 for name in versions})
                for name, value in row.items():
                    sums[name] += value
                print(f"{size} {screen}: {row}", flush=True)
    finally:
        teardown_databases(old, verbosity=0)
    # ``ratio``: after ÷ before of the screens' medians summed, at the largest size.
    largest = result.pop("sums", {}).get(max(args.sizes), {})
    ratio = round(largest["after"] / largest["before"], 3) if largest.get("before") else None
    print(json.dumps({"ratio": ratio, **result}))


if __name__ == "__main__":
    main()
