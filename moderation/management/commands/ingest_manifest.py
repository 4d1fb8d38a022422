"""`manage.py ingest_manifest FILE.jsonl`: bulk import videos with their metadata and comments."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.ingest import video_import_manifest
from moderation.media.pipeline import video_process


class Command(BaseCommand):
    help = (
        "Import a JSONL manifest (id, video, title, description, uploader, comments, cover per line); "
        "idempotent by id; bad lines are reported and skipped."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("manifest")
        parser.add_argument("--sync", action="store_true", help="process here instead of in a media worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            report = video_import_manifest(manifest=opts["manifest"])
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stderr.write(error)
        if opts["sync"]:
            for pk in report.created:
                video_process(video_id=pk)
        self.stdout.write(report.summary())
