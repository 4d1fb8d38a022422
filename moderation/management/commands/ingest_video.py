"""`manage.py ingest_video PATH`: ingest one video file from a server folder inside MEDIA_IMPORT_ROOTS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.ingest import ImportPathRefused, import_path_confined, video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process


class Command(BaseCommand):
    help = (
        "Ingest a video file (confined to MEDIA_IMPORT_ROOTS) and queue it for processing "
        "(the same bytes twice give the same video)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--title", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--uploader", default="")
        parser.add_argument("--external-id", default=None)
        parser.add_argument(
            "--sync", action="store_true", help="process the video in this process instead of a media worker"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["path"]
        try:
            real = import_path_confined(path)
            if not real.is_file():
                raise ModerationError(f"{path} is not a file.")
            video = video_ingest(
                path=real,
                title=opts["title"] or path.stem,
                description=opts["description"],
                uploader=opts["uploader"],
                external_id=opts["external_id"],
                source=Video.Source.FOLDER,
                confined=True,
            )
        except ImportPathRefused as exc:
            raise CommandError(exc.allowed_roots_text()) from exc
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        if opts["sync"]:
            video = video_process(video_id=video.pk) or video
        self.stdout.write(f"video {video.pk}: {video.get_status_display()}{' — ' + video.error if video.error else ''}")
