"""`manage.py rebuild_repro_index`: rebuild the PDQ reproduction index (``FrameHash``) from the keyframes.

The index is kept up to date without it (each video is indexed by ``find_candidates`` when it becomes
ready); this is for after a change to how rows are built, a restore, or an outage of the media workers.
Safe to run while workers run, and idempotent (see ``repro_index_rebuild``).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Rebuild the PDQ reproduction index from the keyframes of ready videos (safe while workers run)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--video", type=int, action="append", dest="videos", help="only this video (repeatable)")
        parser.add_argument("--missing", action="store_true", help="only ready videos that have no index rows yet")
        parser.add_argument("--every", type=int, default=100, help="print progress every this many videos")

    def handle(self, *args: Any, **opts: Any) -> None:
        from moderation.reproduction.services import IndexRebuildProgress, repro_index_rebuild

        started = time.monotonic()

        def report(state: IndexRebuildProgress) -> None:
            rate = state.done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{state.done}/{state.total} videos, {state.rows} seconds indexed ({rate:.1f} videos/s)")

        state = repro_index_rebuild(
            video_ids=opts["videos"],
            missing_only=opts["missing"],
            progress=report,
            progress_every=max(1, opts["every"]),
        )
        removed = f"; removed {state.removed} rows of videos no longer ready" if state.removed else ""
        if state.vectors_swept:
            removed += f"; dropped {state.vectors_swept} embeddings no video holds any more"
        self.stdout.write(
            self.style.SUCCESS(
                f"Reproduction index rebuilt: {state.done} videos, {state.rows} seconds in "
                f"{time.monotonic() - started:.1f} s{removed}."
            )
        )
