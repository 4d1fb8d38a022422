"""`manage.py repro_keyframe_index {status,create,drop}`: the per-keyframe HNSW index, built on demand.

Reproduction retrieval reads one picture vector per video (``REPRO_FRAME_NEIGHBOURS=video``, the default), so
the schema no longer keeps an HNSW index over every keyframe row (migration 0029). The old per-keyframe channel
(``keyframes`` or ``both``) works without it but scans every keyframe row per query keyframe; build the index
before switching to it (CONCURRENTLY: workers keep inserting meanwhile; over 1.6M keyframe rows it takes most of
an hour on 2 cores, ~2.7 kB per row). Idempotent.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Show, build (CONCURRENTLY) or drop the per-keyframe HNSW index that REPRO_FRAME_NEIGHBOURS=keyframes reads."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["status", "create", "drop"])

    def handle(self, *args: Any, **opts: Any) -> None:
        from django.conf import settings

        from moderation.reproduction.selectors import keyframe_index_exists
        from moderation.reproduction.services import keyframe_index_set

        started = time.monotonic()
        if opts["action"] != "status":
            changed = keyframe_index_set(present=opts["action"] == "create")
            verb = "built" if opts["action"] == "create" else "dropped"
            took = f" in {time.monotonic() - started:.1f} s" if changed else " (nothing to do)"
            self.stdout.write(self.style.SUCCESS(f"Per-keyframe HNSW index {verb}{took}."))
        present = keyframe_index_exists()
        channel = settings.REPRO_FRAME_NEIGHBOURS
        note = ""
        if channel in {"keyframes", "both"} and not present:
            note = (
                f" REPRO_FRAME_NEIGHBOURS={channel} reads it: each look-up scans every keyframe row until it is built."
            )
        self.stdout.write(f"keyframe_embedding_hnsw: {'present' if present else 'absent'}.{note}")
