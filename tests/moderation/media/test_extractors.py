"""The extractors on real files: ffprobe, ffmpeg and faster-whisper, no mocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from moderation.errors import ModerationError
from moderation.media import extractors

pytestmark = pytest.mark.integration


def test_probe_reads_duration_size_and_codecs_of_a_real_clip(speech_clip: Path) -> None:
    meta = extractors.probe(speech_clip)

    assert 2.0 <= meta.duration <= 4.1
    assert (meta.width, meta.height) == (320, 180)
    assert meta.fps == pytest.approx(25.0)
    assert meta.video_codec == "h264"
    assert meta.audio_codec == "aac"
    assert meta.has_audio


def test_probe_of_a_video_without_sound_says_so(silent_clip: Path) -> None:
    meta = extractors.probe(silent_clip)

    assert meta.has_audio is False
    assert meta.audio_codec == ""
    assert meta.duration == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("text", "not a playable video"),
        ("text_txt", "text document"),
        ("jpeg", "still image"),
        ("truncated_head", "not a playable video"),
        ("empty", "empty (0 bytes)"),
    ],
)
def test_probe_refuses_files_that_are_not_videos(bad_files: dict[str, Path], kind: str, expected: str) -> None:
    with pytest.raises(ModerationError) as err:
        extractors.probe(bad_files[kind])

    message = str(err.value)
    assert expected in message
    assert str(bad_files[kind].parent) not in message  # no server paths in what the user reads


def test_keyframes_come_from_one_ffmpeg_process_at_one_per_second(
    speech_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[str] = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):  # type: ignore[no-untyped-def]
        launched.append(Path(cmd[0]).name)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    duration = extractors.probe(speech_clip).duration
    launched.clear()

    frames = extractors.extract_keyframes(speech_clip, tmp_path, fps=1.0, width=160, duration=duration)

    assert launched == ["ffmpeg"]
    assert abs(len(frames) - duration) <= 1
    assert [f.timestamp for f in frames] == [float(i) for i in range(len(frames))]
    assert all(f.path.is_file() and f.path.stat().st_size > 0 for f in frames)
    assert frames[0].path.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG


def test_select_uniform_spreads_eight_over_the_video() -> None:
    assert extractors.select_uniform(5) == {0, 1, 2, 3, 4}
    picked = extractors.select_uniform(60)
    assert len(picked) == 8
    assert min(picked) == 0 and max(picked) == 59
    gaps = sorted(b - a for a, b in zip(sorted(picked), sorted(picked)[1:], strict=False))
    assert gaps[-1] - gaps[0] <= 1


def test_whisper_base_is_assembled_from_the_two_wheels() -> None:
    folder = extractors.whisper_base_dir()
    parts = [extractors._wheel_data_dir(p) for p in extractors._WHEEL_PACKAGES]
    expected = (parts[0] / "model.bin.part1").stat().st_size + (parts[1] / "model.bin.part2").stat().st_size

    assert (folder / "model.bin").stat().st_size == expected
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


def test_asr_transcribes_espeak_speech(speech_clip: Path) -> None:
    transcript = extractors.transcribe(speech_clip)

    text = " ".join(s.text for s in transcript.segments).lower()
    assert transcript.language == "en"
    assert "private" in text or "deal" in text, text
    assert all(0 <= s.start < s.end <= 4.5 for s in transcript.segments)


def test_audio_decoded_by_ffmpeg_matches_faster_whispers_decoder(speech_clip: Path, silent_clip: Path) -> None:
    import numpy as np
    from faster_whisper import decode_audio

    ours = extractors.decode_audio_16k(speech_clip)
    theirs = decode_audio(str(speech_clip), sampling_rate=16000)

    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).max()) <= 1.5 / 32768  # one 16-bit step apart at most
    with pytest.raises(RuntimeError):  # no audio track: a readable reason, not empty samples
        extractors.decode_audio_16k(silent_clip)


def test_a_short_clip_is_encoded_once_for_language_and_text(speech_clip: Path) -> None:
    """The language is detected on the window transcribed first, whose encoder output is reused:
    one whisper encoder pass for a clip shorter than a window, not two."""
    model = extractors.whisper_model()
    model._last_encoded.value = None  # nothing kept from an earlier test
    passes = []
    parent = type(model).__mro__[1]  # faster-whisper's WhisperModel: the real encoder pass
    original = parent.encode

    def counted(self, features):  # type: ignore[no-untyped-def]
        passes.append(features.shape)
        return original(self, features)

    parent.encode = counted
    try:
        transcript = extractors.transcribe(speech_clip)
    finally:
        parent.encode = original

    assert transcript.language == "en" and transcript.segments
    assert len(passes) == 1, passes


def test_the_web_side_of_the_media_wing_does_not_load_faster_whisper() -> None:
    code = (
        "import django, sys; django.setup();"
        "import moderation.media.views, moderation.media.ingest, moderation.media.pipeline, moderation.media.tasks;"
        "import workbench.urls;"
        "heavy = {'faster_whisper', 'ctranslate2', 'torch'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "workbench.settings_test"},
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
