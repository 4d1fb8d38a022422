"""What the visibility rule (``video_open_to_q``) costs the screens that apply it, for a moderator outside the
restricted queue's group, at two library sizes, before and after this branch's change (interleaved), in one run.

"Before" is the rule as ``--before`` (a commit; default a1230eb, main before the rule's SQL was cached) builds it,
compiled in place on every query (``video_open_to_others_q`` swapped for that commit's); "after" is the code here.

Each size is a library of decided videos with a pending item in the default queue, 5 % of them routed to a
group-restricted queue only (hidden from the moderator), 1 % routed there before the item was made
(``routed_restricted``), and a few uploads not decided yet (the moderator's own and a colleague's). For each
screen: the median server time of ``--repeats`` requests through Django's test client, then one request whose
statements (of each version) are split into Python building and compiling the rule's subqueries (time spent in ``Subquery``
resolving and ``Exists`` compiling, the outermost calls only), Postgres planning and execution (each statement
run again, planned afresh, under ``EXPLAIN (ANALYZE, SUMMARY, TIMING OFF)``: what planning costs where a statement
is not prepared; after this branch the rule's statements are prepared, ``workbench.db.prepare_marked``, so the
requests' times no longer pay it).

    .venv/bin/python bench/visibility_screens.py [--small 1000] [--large 20000] [--repeats 6] [--before a1230eb]

The last line printed is one JSON object; ``ratio`` is after / before of the screens' summed median times at the
large size.
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
from _common import django_setup  # noqa: E402

# Requests per version before the timed ones: a prepared statement runs its generic plan from its sixth run, which
# a web worker's persistent connection reaches within seconds.
WARM_UP = 6


class _RuleClock:
    """Wall time inside the ORM's subquery resolving and compiling (the rule's EXISTS legs) and the cached rule's
    own (``_OpenToOthers``), outermost calls only, while ``on``."""

    def __init__(self) -> None:
        from django.db.models import expressions

        from moderation.media import selectors

        self.spent = 0.0
        self.on = False
        self._depth = 0
        timed = [(expressions.Subquery, "resolve_expression"), (expressions.Exists, "as_sql")]
        cached = getattr(selectors, "_OpenToOthers", None)
        if cached is not None:
            timed += [(cached, "resolve_expression"), (cached, "as_sql")]
        for cls, name in timed:
            setattr(cls, name, self._wrap(getattr(cls, name)))

    def _wrap(self, fn):  # type: ignore[no-untyped-def]
        clock = self

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not clock.on or clock._depth:
                return fn(*args, **kwargs)
            clock._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock.spent += time.perf_counter() - t0
                clock._depth -= 1

        return timed


def _explain(sql: str, params: Any) -> tuple[float, float]:
    """Planning and execution of one statement planned afresh (unmarked: not prepared)."""
    from django.db import connection

    from workbench.db import PREPARE_MARK

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, SUMMARY, TIMING OFF, FORMAT JSON) " + sql.replace(PREPARE_MARK, ""), params)
        plan = cursor.fetchone()[0]
    plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    return plan["Planning Time"], plan["Execution Time"]


def _screen(client, url: str, repeats: int, clock: _RuleClock, versions) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from moderation.media import selectors

    samples: dict[str, list[float]] = {name: [] for name in versions}
    for round_ in range(repeats + WARM_UP):
        for name, rule in versions.items():
            selectors.video_open_to_others_q = rule
            t0 = time.perf_counter()
            assert client.get(url).status_code == 200, url
            if round_ >= WARM_UP:
                samples[name].append((time.perf_counter() - t0) * 1000)
    row: dict[str, Any] = {}
    for name, rule in versions.items():
        selectors.video_open_to_others_q = rule
        row[name] = {"ms": round(statistics.median(samples[name]), 1), **_split(client, url, clock)}
    return row


def _split(client, url: str, clock: _RuleClock) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from django.db import connection

    sent: list[tuple[str, Any]] = []

    def keep(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append((sql, params))
        return execute(sql, params, many, context)

    clock.spent, clock.on = 0.0, True
    with connection.execute_wrapper(keep):
        client.get(url)
    clock.on = False
    plan = run = 0.0
    rule_statements = 0
    for sql, params in sent:
        if "routed_restricted" not in sql or not sql.lstrip().upper().startswith("SELECT"):
            continue
        rule_statements += 1
        p, e = _explain(sql, params)
        plan, run = plan + p, run + e
    return {
        "queries": len(sent),
        "rule_statements": rule_statements,
        "rule_python_ms": round(clock.spent * 1000, 1),
        "plan_ms": round(plan, 1),
        "exec_ms": round(run, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--before", default="a1230eb")
    args = parser.parse_args()

    django_setup()
    from _common import module_at, restricted_library, restricted_world

    from moderation.media import selectors

    before = module_at(args.before, "moderation/media/selectors.py")
    versions = {"before": before.video_open_to_others_q, "after": selectors.video_open_to_others_q}
    from django.test.utils import setup_databases, teardown_databases
    from django.urls import reverse

    old = setup_databases(verbosity=0, interactive=False)
    clock = _RuleClock()
    try:
        from moderation.models import ReviewTask
        from moderation.review.services import review_claim_next

        world = restricted_world()
        policy_version, open_queue, restricted, moderator, colleague, client = world
        result: dict[str, Any] = {"repeats": args.repeats}
        for label, _size in restricted_library(world, (("small", args.small), ("large", args.large))):
            task = review_claim_next(user=moderator, queue=open_queue)
            assert task is not None
            video_id = task.decision.video_id
            screens = {
                "queue_list": reverse("moderation:queue"),
                "queue_detail": reverse("moderation:queue_detail", args=[open_queue.slug]),
                "review_task": reverse("moderation:review_task", args=[task.pk]),
                "video_list": reverse("moderation:video_list"),
                "video_detail": reverse("moderation:video_detail", args=[video_id]),
                "api_video_list": reverse("moderation:api-video-list"),
                "api_video_detail": reverse("moderation:api-video-detail", args=[video_id]),
                "api_decision_list": reverse("moderation:api-decision-list"),
                "tag_queue": reverse("moderation:tag_queue"),
                "repro_queue": reverse("moderation:repro_queue"),
            }
            for name, url in screens.items():
                row = _screen(client, url, args.repeats, clock, versions)
                result[f"{name}_{label}"] = row
                print(f"{label} {name}: {row}", flush=True)
            ReviewTask.objects.filter(pk=task.pk).update(status=ReviewTask.Status.PENDING, claimed_by=None)
        total = {v: sum(result[f"{name}_large"][v]["ms"] for name in screens) for v in versions}
        result = {"ratio": round(total["after"] / total["before"], 3), "sizes": [args.small, args.large], **result}
    finally:
        teardown_databases(old, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
