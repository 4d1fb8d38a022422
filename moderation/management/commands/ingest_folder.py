"""`manage.py ingest_folder PATH`: ingest every video under a server folder inside MEDIA_IMPORT_ROOTS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.ingest import video_ingest_folder
from moderation.media.pipeline import video_process


class Command(BaseCommand):
    help = "Ingest all video files under a folder (confined to MEDIA_IMPORT_ROOTS) and queue them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder")
        parser.add_argument("--sync", action="store_true", help="process here instead of in a media worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            report = video_ingest_folder(folder=opts["folder"])
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stderr.write(error)
        if opts["sync"]:
            for pk in report.created:
                video_process(video_id=pk)
        self.stdout.write(report.summary())
