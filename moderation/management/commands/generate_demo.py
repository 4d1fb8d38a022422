"""`manage.py generate_demo`: synthetic demo videos (test pattern, burned-in text, espeak-ng speech), ingested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process


class Command(BaseCommand):
    help = "Generate short synthetic demo videos with ffmpeg and espeak-ng and ingest them (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=5, help=f"how many (1-{len(DEMO_SCRIPTS)}, default 5)")
        parser.add_argument("--out", type=Path, default=None, help="folder for the mp4 files (default var/demo)")
        parser.add_argument("--no-ingest", action="store_true", help="only write the files")
        parser.add_argument(
            "--sync", action="store_true", help="process each video in this process instead of a media worker"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        count = opts["count"]
        if not 1 <= count <= len(DEMO_SCRIPTS):
            raise CommandError(f"--count must be between 1 and {len(DEMO_SCRIPTS)}.")
        out_dir: Path = opts["out"] or Path(settings.VAR_DIR) / "demo"
        for script in DEMO_SCRIPTS[:count]:
            path = out_dir / f"{script.slug}.mp4"
            external_id = f"demo:{script.slug}"
            video = None if opts["no_ingest"] else Video.objects.filter(external_id=external_id).first()
            # An ingested demo video is not rendered again: each `./run.sh` after the first spent a core for a minute
            # or more re-rendering all of them (ffmpeg, espeak-ng) while the web server and workers were starting.
            if video is None or not path.exists():
                try:
                    synthesize_video(path, title=script.title, speech=script.speech, on_screen=script.on_screen)
                except ModerationError as exc:
                    raise CommandError(str(exc)) from exc
            if opts["no_ingest"]:
                self.stdout.write(f"wrote {path}")
                continue
            if video is None:
                video = video_ingest(
                    path=path,
                    title=script.title,
                    description=f"Synthetic demo. Spoken: “{script.speech}”",
                    uploader="demo",
                    external_id=external_id,
                    source=Video.Source.DEMO,
                )
            if opts["sync"]:
                video = video_process(video_id=video.pk) or video
            self.stdout.write(f"{path.name}: video {video.pk} ({video.get_status_display()}) — {script.title}")
