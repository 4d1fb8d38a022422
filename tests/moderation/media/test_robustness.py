"""A corpus of awkward files: each ends ready or failed with a readable reason, never stuck in processing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from moderation.media.demo import synthesize_video
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


@pytest.fixture(scope="session")
def corpus(media_dir: Path, bad_files: dict[str, Path], silent_clip: Path) -> dict[str, Path]:
    d = media_dir / "corpus"
    d.mkdir()
    files = {k: bad_files[k] for k in ("empty", "truncated", "jpeg", "text")}
    files["no_audio"] = silent_clip
    files["audio_only"] = d / "audio.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(files["audio_only"]))
    files["one_frame"] = d / "one-frame.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", "1", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", str(files["one_frame"]))  # fmt: skip
    # Five minutes, tiny and without audio so it is quick to make and to process (300 candidates, a hundred times the
    # other clips', far past OCR_MAX_FRAMES and KEYFRAME_SELECT_K). It was ten minutes (600 candidates): twice the
    # work, and no limit between the two (KEYFRAME_MAX_CANDIDATES is 3,600; tests/hardening/test_adv17_findings.py
    # goes past it).
    files["five_minutes"] = d / "five-minutes.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=2", "-t", "300", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", str(files["five_minutes"]))  # fmt: skip
    files["4k"] = d / "4k.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=5", "-t", "2", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", str(files["4k"]))  # fmt: skip
    files["rotated"] = d / "rotated.mp4"
    _ffmpeg("-i", str(silent_clip), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(files["rotated"]))
    files["vfr"] = d / "vfr.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "4", "-vf",
            r"select='lt(mod(n\,30)\,3)+lt(n\,10)'", "-vsync", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", str(files["vfr"]))  # fmt: skip
    files["unicode_name"] = synthesize_video(
        d / "my clip – ünïcødé 视频 (1).mp4",
        title="Unicode",
        size=(160, 90),
        min_seconds=2,
        max_seconds=2,
        audio=False,
    )
    return files


CASES = [
    ("empty", Video.Status.FAILED, "This file is empty"),
    ("truncated", Video.Status.FAILED, "This video is"),
    ("jpeg", Video.Status.FAILED, "This file is not a playable video: it is a still image"),
    ("text", Video.Status.FAILED, "This file is not a playable video"),
    ("audio_only", Video.Status.FAILED, "This file is not a playable video: ffprobe found no video stream"),
    ("no_audio", Video.Status.READY, ""),
    ("one_frame", Video.Status.READY, ""),
    ("five_minutes", Video.Status.READY, ""),
    ("4k", Video.Status.READY, ""),
    ("rotated", Video.Status.READY, ""),
    ("vfr", Video.Status.READY, ""),
    ("unicode_name", Video.Status.READY, ""),
]


@pytest.mark.parametrize(("kind", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_every_file_ends_ready_or_failed_readably(corpus: dict[str, Path], kind: str, status: str, reason: str) -> None:
    video = video_ingest(path=corpus[kind], title=kind)

    assert video_process(video_id=video.pk) is not None  # never raises
    video.refresh_from_db()

    assert video.status == status, video.error
    assert video.status != Video.Status.PROCESSING
    if status == Video.Status.FAILED:
        assert video.error.startswith(reason), video.error
        assert video.error_for_sender, video.error  # recorded as written for the sender: a platform reads it
        # Not a video at all, or a video cut off: the same bytes fail every time, so its page offers Dismiss.
        expected = Video.ErrorKind.DAMAGED if kind == "truncated" else Video.ErrorKind.NOT_VIDEO
        assert video.error_kind == expected, video.error_kind
        assert "Traceback" not in video.error and str(settings.MEDIA_ROOT) not in video.error
    else:
        assert video.error == "" and video.progress == 100
        keyframes = list(video.keyframes.order_by("index"))
        assert keyframes and 1 <= sum(k.selected for k in keyframes) <= 8
        assert all(k.pdq_hash and k.embedding is not None for k in keyframes)
        if kind == "five_minutes":
            assert len(keyframes) == 300 and sum(k.selected for k in keyframes) == 8
            picked = [k.timestamp for k in keyframes if k.selected]
            assert picked[-1] - picked[0] > 150  # spread over the video, not bunched
        if kind == "rotated":  # ffmpeg applies the display matrix: frames come out portrait
            assert keyframes[0].height > keyframes[0].width
        if kind == "unicode_name":
            assert video.original_filename == "my clip – ünïcødé 视频 (1).mp4"
