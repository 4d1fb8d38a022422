"""`manage.py repair_routing`: route stranded videos again and queue the decisions half-decided videos lack.

The same repair as the ops page's button (``review_routing_repair``): a video closed to all but admins while
waiting for an item no queue will make (a queue edited or deleted by a path that did not route it again, or a
flag older code left), or open while a restricted queue awaits its item, is routed as the queues say now; a
decided video lacking a decision under an auto-applied policy gets that decision queued on the infer queue; a
video whose routing older code left inconsistent (a decision no queue holds nor awaits, a pending item in a queue
of another policy, an awaited item its queue holds already: ``routing_orphans``) is mended.
Idempotent: safe to run again, and while workers run. At most ``--limit`` videos of each kind a run, saying how
many are left; ``--all`` runs batch after batch until none is. A half-decided video queued already, or given up
after failing ``MissingDecisionRepair.MAX_ATTEMPTS`` times (the ops page's Retry), is not queued again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Route stranded videos again, mend routing older code left inconsistent, and queue the decisions decided "
        "videos lack under auto-applied policies."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="at most this many videos of each kind a run (default ROUTING_REPAIR_BATCH)",
        )
        parser.add_argument("--all", action="store_true", help="run batch after batch until nothing is left to repair")
        parser.add_argument("--dry-run", action="store_true", help="only list the videos it would repair")

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.ops.services import ops_routing_repair

        limit, would = opts["limit"] and max(1, opts["limit"]), "would be " if opts["dry_run"] else ""
        seen: set[tuple[int, ...]] = set()
        while True:
            result = ops_routing_repair(limit=limit, dry_run=opts["dry_run"])
            self.stdout.write(
                f"{len(result.rerouted)} stranded video(s) {would}routed again"
                + (f": {', '.join(f'#{pk}' for pk in result.rerouted)}" if result.rerouted else "")
            )
            self.stdout.write(
                f"{len(result.decisions_queued)} half-decided video(s) {would}queued for their missing decisions"
                + (f": {', '.join(f'#{pk}' for pk in result.decisions_queued)}" if result.decisions_queued else "")
            )
            self.stdout.write(
                f"{len(result.mended)} video(s) with routing older code left inconsistent {would}mended"
                + (f": {', '.join(f'#{pk}' for pk in result.mended)}" if result.mended else "")
            )
            left = result.stranded_left or result.missing_left or result.orphaned_left
            batch = tuple(result.rerouted + result.decisions_queued + [-pk for pk in result.mended])
            if not (opts["all"] and left) or opts["dry_run"] or batch in seen:
                break
            seen.add(batch)  # a batch that left everything as it was would loop for good
        if left:
            self.stdout.write(
                f"left: {result.stranded_left} stranded, {result.orphaned_left} inconsistent and "
                f"{result.missing_left} half-decided video(s) "
                + ("(run again to continue, or with --all)" if not opts["all"] else "(routing them changed nothing)")
            )
