"""What the bulk ingest commands share (the leading underscore keeps Django from listing it as a command)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.ingest import ImportPathRefused, ImportReport
from moderation.media.pipeline import video_process


class BulkIngestCommand(BaseCommand):
    """``manage.py <command> SOURCE [--sync]``: run one bulk ingest, report per-item errors, optionally process here."""

    source = "source"

    def ingest(self, source: str) -> ImportReport:
        raise NotImplementedError

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(self.source)
        parser.add_argument("--sync", action="store_true", help="process here instead of in a media worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            report = self.ingest(opts[self.source])
        except ImportPathRefused as exc:
            raise CommandError(exc.allowed_roots_text()) from exc
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stderr.write(error)
        if opts["sync"]:
            for pk in report.created:
                video_process(video_id=pk)
        self.stdout.write(report.summary())
