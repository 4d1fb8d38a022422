"""Tiny real clips for the reproduction tests: an original, transformed copies and an unrelated video."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.media.demo import synthesize_video
from moderation.reproduction import transforms


@pytest.fixture(scope="session")
def repro_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("repro-src")
    original = synthesize_video(
        folder / "original.mp4", title="Miracle herbal tea", speech="This tea cures everything. Guaranteed.",
        on_screen="Cures everything", size=(320, 180), min_seconds=3.0, max_seconds=4.0,
    )  # fmt: skip
    unrelated_src = synthesize_video(
        folder / "unrelated-src.mp4", title="Sleepy cat", speech="My cat fell asleep in the sun again.",
        on_screen="Nap time", size=(320, 180), min_seconds=3.0, max_seconds=4.0,
    )  # fmt: skip
    # A different picture, not only different words: the unrelated clip is shown upside down.
    unrelated = folder / "unrelated.mp4"
    transforms._run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(unrelated_src), "-vf", "vflip,negate",
                     *transforms.ENCODE, *transforms.AUDIO, str(unrelated)])  # fmt: skip
    return {
        "original": original,
        "mirror": transforms.apply("mirror", original, folder / "mirror.mp4"),
        "reencode": transforms.apply("reencode", original, folder / "reencode.mp4"),
        "unrelated": unrelated,
    }
