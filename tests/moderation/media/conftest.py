"""Tiny real media for the media tests, generated once per session with ffmpeg and espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from moderation.media.demo import synthesize_video

SPEECH = "Add me on WeChat for a private deal. Message me privately."


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-src")


@pytest.fixture(scope="session")
def speech_clip(media_dir: Path) -> Path:
    """About 3-4 s, 320x180, H.264 + AAC, espeak-ng saying SPEECH."""
    return synthesize_video(
        media_dir / "speech.mp4",
        title="Private deal",
        speech=SPEECH,
        on_screen="Add me on WeChat",
        size=(320, 180),
        min_seconds=2.0,
        max_seconds=4.0,
    )


@pytest.fixture(scope="session")
def silent_clip(media_dir: Path) -> Path:
    """3 s, 320x180, video only (no audio stream at all)."""
    return synthesize_video(
        media_dir / "silent.mp4", title="No sound", size=(320, 180), min_seconds=3.0, max_seconds=3.0, audio=False
    )


@pytest.fixture(scope="session")
def bad_files(media_dir: Path, speech_clip: Path) -> dict[str, Path]:
    """Files a careless uploader could send: none of them is a playable video."""
    text = media_dir / "notes.mp4"
    text.write_text("Meeting notes\n" * 40)
    text_txt = media_dir / "notes.txt"
    shutil.copyfile(text, text_txt)
    jpeg = media_dir / "photo.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1",
         "-f", "image2", "-c:v", "mjpeg", str(jpeg)],
        check=True,
    )  # fmt: skip
    truncated = media_dir / "truncated.mp4"
    truncated.write_bytes(speech_clip.read_bytes()[:4000])  # moov at the start (faststart), media data cut off
    truncated_head = media_dir / "truncated-head.mp4"
    truncated_head.write_bytes(speech_clip.read_bytes()[:600])
    empty = media_dir / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "text": text,
        "text_txt": text_txt,
        "jpeg": jpeg,
        "truncated": truncated,
        "truncated_head": truncated_head,
        "empty": empty,
    }
