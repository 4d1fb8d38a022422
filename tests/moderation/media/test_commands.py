"""manage.py generate_demo and ingest_video, on real ffmpeg/espeak-ng output."""

from __future__ import annotations

import hashlib
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from moderation.media.models import Video

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_generate_demo_makes_short_spoken_videos_and_is_idempotent(tmp_path: Path) -> None:
    call_command("generate_demo", count=1, out=tmp_path, no_ingest=True, stdout=StringIO())
    assert not Video.objects.exists()  # --no-ingest only writes files
    call_command("generate_demo", count=1, out=tmp_path, stdout=StringIO())
    clip = tmp_path / "private-deal.mp4"
    rendered = clip.stat().st_mtime_ns
    call_command("generate_demo", count=1, out=tmp_path, stdout=StringIO())
    # An ingested demo video is not rendered again (each ./run.sh re-rendered them all while starting).
    assert clip.stat().st_mtime_ns == rendered

    video = Video.objects.get()
    assert video.external_id == "demo:private-deal"
    assert video.source == Video.Source.DEMO
    assert video.title == "Cheap phones, DM me"
    # Regenerating wrote the very bytes that were ingested: same bytes, same video.
    assert video.sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    meta = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height:format=duration",
         "-of", "default=nw=1", str(clip)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "width=640" in meta and "height=360" in meta and "codec_type=audio" in meta
    duration = float(next(line for line in meta.splitlines() if line.startswith("duration=")).split("=")[1])
    assert 5.0 <= duration <= 8.0


def test_ingest_video_command_processes_with_sync(silent_clip: Path, settings: Any) -> None:
    settings.MEDIA_IMPORT_ROOTS = [str(silent_clip.parent)]
    out = StringIO()
    call_command("ingest_video", str(silent_clip), title="Quiet clip", sync=True, stdout=out)

    video = Video.objects.get()
    assert video.title == "Quiet clip"
    assert video.source == Video.Source.FOLDER
    assert video.status == Video.Status.READY
    assert "Ready" in out.getvalue()


def test_ingest_video_command_reports_a_missing_file(tmp_path: Path, settings: Any) -> None:
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    with pytest.raises(CommandError, match="No such file"):
        call_command("ingest_video", str(tmp_path / "nope.mp4"), stdout=StringIO())


def test_ingest_video_command_refuses_a_path_outside_the_import_roots(
    silent_clip: Path, tmp_path: Path, settings: Any
) -> None:
    allowed = tmp_path / "imports"
    allowed.mkdir()
    settings.MEDIA_IMPORT_ROOTS = [str(allowed)]
    with pytest.raises(CommandError, match="outside the import folders") as refused:
        call_command("ingest_video", str(silent_clip), stdout=StringIO())
    assert str(allowed) in str(refused.value)  # the operator reads where files may come from

    # '..' out of an allowed folder and a symlink out of it are refused the same way.
    with pytest.raises(CommandError, match="outside the import folders"):
        call_command("ingest_video", str(allowed / ".." / ".." / silent_clip.name), stdout=StringIO())
    (allowed / "link.mp4").symlink_to(silent_clip)
    with pytest.raises(CommandError, match="outside the import folders"):
        call_command("ingest_video", str(allowed / "link.mp4"), stdout=StringIO())

    settings.MEDIA_IMPORT_ROOTS = []
    with pytest.raises(CommandError, match="Server-side import is disabled"):
        call_command("ingest_video", str(silent_clip), stdout=StringIO())
    assert not Video.objects.exists()
