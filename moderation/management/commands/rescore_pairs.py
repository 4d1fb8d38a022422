"""`manage.py rescore_pairs`: measure again the stored reproduction pairs an older pair scorer measured.

A pair's features are measured when it is found (``repro_candidates_refresh``) and kept until the video is
searched again: after a change to the scorer (``PAIR_SCORER_VERSION``; 2: a mirrored copy's frames are compared
flipped back, where its frame similarity read about -0.8 before), the pairs measured by the older one keep the
old values. This measures them again (``candidates_features_rescore``): batched, one transaction a batch, each
pair marked with the scorer's version once measured, so it is idempotent and a run stopped midway resumes where
it stopped. Safe while workers run.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Measure again the reproduction pairs an older pair scorer measured (resumable, idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--mirrored-only",
            action="store_true",
            help="only pairs whose match needed flipping the copy (their frame similarity read negative)",
        )
        parser.add_argument("--batch", type=int, default=200, help="pairs a transaction (default 200)")
        parser.add_argument("--limit", type=int, default=None, help="at most this many pairs this run")
        parser.add_argument("--dry-run", action="store_true", help="only say how many pairs it would measure again")

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.reproduction.features import PAIR_SCORER_VERSION
        from moderation.reproduction.services import PairRescore, candidates_features_rescore, candidates_outdated

        which = "mirrored pair(s)" if opts["mirrored_only"] else "pair(s)"
        if opts["dry_run"]:
            outdated = candidates_outdated(mirrored_only=opts["mirrored_only"])
            total = outdated.count()
            shown = list(outdated.values_list("pk", flat=True)[:20])
            listed = f": {', '.join(f'#{pk}' for pk in shown)}{' …' if total > len(shown) else ''}" if shown else ""
            self.stdout.write(
                f"{total} {which} measured by an older scorer would be measured again "
                f"(scorer version {PAIR_SCORER_VERSION}){listed}"
            )
            return
        started = time.monotonic()

        def report(state: PairRescore) -> None:
            self.stdout.write(f"… {len(state.rescored)} measured again, {len(state.failed)} failed")

        result = candidates_features_rescore(
            mirrored_only=opts["mirrored_only"],
            batch=max(1, opts["batch"]),
            limit=None if opts["limit"] is None else max(1, opts["limit"]),
            progress=report,
        )
        for pk, error in result.failed:
            self.stderr.write(f"pair #{pk} could not be measured again: {error}")
        self.stdout.write(
            f"{len(result.rescored)} {which} measured again with scorer version {PAIR_SCORER_VERSION} "
            f"({result.changed} changed) in {time.monotonic() - started:.1f} s"
            + (f"; {len(result.failed)} failed (left for the next run)" if result.failed else "")
            + (f"; {result.left} left: run again to continue" if result.left else "")
        )
