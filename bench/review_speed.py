"""A reviewer approving items by keyboard in real Chromium: keypress to the next item painted, with
1k and with 100k pending items, in one run.

A live Django server (threaded, the test settings, a throwaway test database) serves the review
screen; Chromium (Playwright, Debian's /usr/bin/chromium) logs in as a moderator, claims the first
item and presses ``a`` (approve) on each item. The time is measured in the page: from the keydown
event's own timestamp to the second animation frame after the next item's screen replaced the
current one (a MutationObserver on the screen's parent; two frames = the new screen painted).

The reviewer looks at each item for ``--dwell`` ms before deciding (real reviewers take seconds), and
first waits until the next screen is fetched (``window.reviewState().ready``); how long that wait
was beyond the dwell is reported (``waited_for_next_ms_*``: 0 means the next item was always ready
in time). Every ``--sync-every``-th item is decided without the prefetched screen (the foreground
path: decision POST, then the next screen's GET), interleaved in the same run as the comparison
(``sync_*``): what a keypress costs when the next item is not ready.

Afterwards the database is checked: every item the reviewer decided has exactly one review, and no
item has a review the reviewer did not make (``lost_or_double``).

    .venv/bin/python bench/review_speed.py [--items 200] [--small 1000] [--large 100000]

The last line printed is one JSON object: ``ratio`` = p95 at 100k ÷ p95 at 1k first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.review_speed``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

# Playwright's sync API runs an event loop in this thread; the ORM calls beside it are ours.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-test-123"  # tests.factories.UserFactory

# Installed once per page load: records keydown → next screen painted, per item.
PROBE = """
() => {
  window.__lat = [];
  let pressed = null;
  window.addEventListener("keydown", (ev) => { if (ev.key === "a") pressed = ev.timeStamp; }, true);
  const screen = document.getElementById("review-screen");
  new MutationObserver(() => {
    const now = document.getElementById("review-screen");
    if (!now || pressed === null) return;
    const t0 = pressed;
    pressed = null;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      window.__lat.push({ task: now.dataset.task, ms: performance.now() - t0 });
    }));
  }).observe(screen.parentNode, { childList: true });
}
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _session(page, base_url: str, items: int, dwell_ms: int, sync_every: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Approve ``items`` items; returns the latencies (instant and foreground) and the decided task ids."""
    page.goto(f"{base_url}/review/")
    with page.expect_navigation():
        page.keyboard.press("n")  # claim next (and one ahead)
    page.wait_for_selector("#review-screen")
    page.evaluate(PROBE)
    instant: list[float] = []
    sync: list[float] = []
    waited: list[float] = []
    decided: list[int] = []
    for i in range(items):
        t0 = time.perf_counter()
        page.wait_for_function("window.reviewState().pending === 0 && window.reviewState().ready", timeout=30_000)
        waited.append((time.perf_counter() - t0) * 1000)
        page.wait_for_timeout(dwell_ms)
        foreground = sync_every > 0 and i % sync_every == sync_every - 1
        if foreground:
            page.evaluate("window.reviewForgetAhead()")
        current = int(page.evaluate("document.getElementById('review-screen').dataset.task"))
        n_before = page.evaluate("window.__lat.length")
        page.keyboard.press("a")
        page.wait_for_function(f"window.__lat.length > {n_before}", timeout=30_000)
        ms = float(page.evaluate("window.__lat[window.__lat.length - 1].ms"))
        (sync if foreground else instant).append(ms)
        decided.append(current)
    page.wait_for_function("window.reviewState().pending === 0", timeout=30_000)
    return {"instant": instant, "sync": sync, "waited": waited, "decided": decided}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200, help="items approved at each size")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--dwell", type=int, default=150, help="ms the reviewer looks at an item")
    parser.add_argument("--sync-every", type=int, default=5, help="every Nth item without the prefetched screen")
    args = parser.parse_args()

    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    server = None
    try:
        from django.core.cache import cache
        from django.db import connection
        from playwright.sync_api import sync_playwright
        from pytest_django.live_server_helper import LiveServer

        from moderation.review.models import Review, ReviewTask
        from moderation.review.services import review_queue_default
        from tests.factories import PolicyVersionFactory, UserFactory
        from tests.moderation.review.seeding import seed_pending_tasks

        policy_version = PolicyVersionFactory()
        queue = review_queue_default()
        user = UserFactory(role="moderator")
        server = LiveServer("127.0.0.1")
        server._live_server_modified_settings.enable()
        result: dict[str, object] = {"items": args.items, "dwell_ms": args.dwell, "load_avg_start": os.getloadavg()[0]}
        all_decided: list[int] = []
        seeded = 0
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{server.url}/login/")
            page.fill("input[name=username]", user.username)
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            for label, size in (("1k", args.small), ("100k", args.large)):
                t0 = time.perf_counter()
                # Pending items stay at about ``size`` while the reviewer works (they decide ``items``).
                seed_pending_tasks(n=size - seeded, queue=queue, policy_version=policy_version, title=f"Video {label}")
                seeded = size
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
                cache.clear()  # the queue list's counts (reused for REVIEW_STATS_MAX_AGE_SECONDS) predate the seeding
                pending = ReviewTask.objects.filter(queue=queue, status=ReviewTask.Status.PENDING).count()
                print(f"{label}: {pending} pending ({time.perf_counter() - t0:.1f} s to seed)", flush=True)
                t0 = time.perf_counter()
                run = _session(page, server.url, args.items, args.dwell, args.sync_every)
                instant, sync, waited = run["instant"], run["sync"], run["waited"]
                all_decided += run["decided"]  # type: ignore[arg-type]
                result[f"p50_ms_{label}"] = round(statistics.median(instant), 1)  # type: ignore[arg-type]
                result[f"p95_ms_{label}"] = round(_pct(instant, 0.95), 1)  # type: ignore[arg-type]
                result[f"max_ms_{label}"] = round(max(instant), 1)  # type: ignore[arg-type]
                result[f"n_{label}"] = len(instant)  # type: ignore[arg-type]
                if sync:
                    result[f"sync_p50_ms_{label}"] = round(statistics.median(sync), 1)  # type: ignore[arg-type]
                    result[f"sync_p95_ms_{label}"] = round(_pct(sync, 0.95), 1)  # type: ignore[arg-type]
                result[f"waited_for_next_ms_p95_{label}"] = round(_pct(waited, 0.95), 1)  # type: ignore[arg-type]
                print(
                    f"{label}: instant p50 {result[f'p50_ms_{label}']} ms, p95 {result[f'p95_ms_{label}']} ms "
                    f"(n={len(instant)}); without the prefetched screen p50 "
                    f"{result.get(f'sync_p50_ms_{label}')} ms (n={len(sync)}); "
                    f"{time.perf_counter() - t0:.1f} s",
                    flush=True,
                )
            browser.close()
        # Every decided item has exactly one review by this reviewer; no review of an item not decided.
        reviews = list(Review.objects.filter(reviewer=user).values_list("task_id", flat=True))
        lost = len(set(all_decided) - set(reviews))
        double = (len(all_decided) - len(set(all_decided))) + (len(reviews) - len(set(reviews)))
        extra = len(set(reviews) - set(all_decided))
        result["lost_or_double"] = lost + double + extra
        result["load_avg_end"] = os.getloadavg()[0]
        ratio = float(result["p95_ms_100k"]) / float(result["p95_ms_1k"])  # type: ignore[arg-type]
        ordered = {
            "ratio": round(ratio, 2),
            "p50_ms": result["p50_ms_1k"],
            "p95_ms": result["p95_ms_1k"],
            "p95_ms_100k": result["p95_ms_100k"],
            "lost_or_double": result["lost_or_double"],
            **result,
        }
    finally:
        if server is not None:
            server.stop()
        from django.db import connection as conn

        with conn.cursor() as cursor:  # the server threads' kept-alive connections would block the drop
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(old, verbosity=0)
    print(json.dumps(ordered))


if __name__ == "__main__":
    main()
