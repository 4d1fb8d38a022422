"""Ingest and the media pipeline against the real database, ffmpeg and faster-whisper."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from moderation.errors import ModerationError
from moderation.media.ingest import video_ingest
from moderation.media.models import Keyframe, TranscriptSegment, Video
from moderation.media.pipeline import video_process
from tests.module_rows import refuse_transactional, rows_for_the_module

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _ingest(path: Path, title: str = "clip") -> Video:
    return video_ingest(path=path, title=title)


def test_ingest_stores_the_file_with_its_hash_and_dedups_same_bytes(speech_clip: Path) -> None:
    import hashlib

    first = _ingest(speech_clip, "first")
    again = video_ingest(upload=_Upload(speech_clip.read_bytes(), "renamed.mp4"), title="second")

    assert again.pk == first.pk
    assert Video.objects.count() == 1
    assert first.sha256 == hashlib.sha256(speech_clip.read_bytes()).hexdigest()
    assert first.size_bytes == speech_clip.stat().st_size
    stored = Path(first.file.path)
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT)) and stored.read_bytes() == speech_clip.read_bytes()
    assert first.status == Video.Status.UPLOADED


class _Upload(io.BytesIO):
    """A file object like Django's UploadedFile: name, size and chunks()."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name
        self.size = len(data)

    def chunks(self, chunk_size: int = 64 * 1024):  # type: ignore[no-untyped-def]
        while chunk := self.read(chunk_size):
            yield chunk


def test_ingest_refuses_a_file_over_the_limit_and_leaves_nothing_behind(speech_clip: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.WORKBENCH_UPLOAD_MAX_BYTES = 10_000
    tmp_dir = Path(settings.MEDIA_ROOT) / "tmp"
    before = set(tmp_dir.glob("*")) if tmp_dir.exists() else set()

    with pytest.raises(ModerationError, match="larger than the upload limit"):
        _ingest(speech_clip)

    upload = _Upload(speech_clip.read_bytes(), "big.mp4")
    upload.size = None  # type: ignore[assignment]  # size unknown up front: the streaming copy must stop it
    with pytest.raises(ModerationError, match="larger than the upload limit"):
        video_ingest(upload=upload, title="big")
    assert not Video.objects.exists()
    assert set(tmp_dir.glob("*")) == before


@pytest.fixture(scope="class")
def speech_processed_once(speech_clip: Path, django_db_setup, django_db_blocker) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The speech clip ingested and processed by the whole pipeline once for the class's tests (``tests/module_rows.py``:
    what a test changes is undone when it ends), rather than once by each: its id."""

    def build() -> int:
        video = _ingest(speech_clip)
        video_process(video_id=video.pk)
        return video.pk

    with rows_for_the_module(django_db_blocker, build) as video_id:
        yield video_id


class TestTheSpeechClipProcessed:
    """Both tests began with the same ingest and whole pipeline of the speech clip."""

    @pytest.fixture
    def video(self, request: pytest.FixtureRequest, speech_processed_once: int) -> Video:
        return Video.objects.get(pk=refuse_transactional(request, speech_processed_once))

    def test_processing_probes_extracts_keyframes_and_transcribes(self, video: Video) -> None:
        _check_probed_extracted_and_transcribed(video)

    def test_reprocessing_does_not_duplicate_keyframes_or_segments(self, video: Video) -> None:
        _check_reprocessing_duplicates_nothing(video)


def _check_probed_extracted_and_transcribed(video: Video) -> None:
    assert video.status == Video.Status.READY, video.error
    assert video.progress == 100
    assert video.stage == Video.Stage.INFERENCE  # media done; inference was queued
    assert (video.width, video.height, video.video_codec, video.audio_codec) == (320, 180, "h264", "aac")
    keyframes = list(video.keyframes.order_by("index"))
    assert abs(len(keyframes) - video.duration) <= 1
    assert [k.timestamp for k in keyframes] == [float(i) for i in range(len(keyframes))]
    assert all(Path(k.image.path).is_file() for k in keyframes)
    assert sum(k.selected for k in keyframes) == min(8, len(keyframes))
    text = " ".join(video.segments.values_list("text", flat=True)).lower()
    assert "private" in text or "deal" in text, text
    assert video.language == "en"


def test_video_without_audio_is_ready_with_an_empty_transcript(silent_clip: Path) -> None:
    video = _ingest(silent_clip)

    video_process(video_id=video.pk)

    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    assert video.has_audio is False
    assert video.keyframes.count() >= 2
    assert not video.segments.exists()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("text", "This file is not a playable video"),
        ("text_txt", "This file is not a playable video"),
        ("jpeg", "This file is not a playable video: it is a still image"),
        ("truncated", "This video is"),
        ("truncated_head", "This file is not a playable video"),
    ],
)
def test_files_that_are_not_videos_end_failed_with_a_readable_error(
    bad_files: dict[str, Path], kind: str, expected: str
) -> None:
    video = _ingest(bad_files[kind])

    result = video_process(video_id=video.pk)  # must not raise

    video.refresh_from_db()
    assert result is not None
    assert video.status == Video.Status.FAILED
    assert video.error.startswith(expected), video.error
    assert "Traceback" not in video.error
    assert str(settings.MEDIA_ROOT) not in video.error  # no server paths in what the user reads
    assert not video.keyframes.exists()


def test_a_zero_byte_file_is_refused_at_ingest_or_fails_readably(bad_files: dict[str, Path]) -> None:
    with pytest.raises(ModerationError, match="empty"):
        video_ingest(upload=_Upload(b"", "empty.mp4"), title="empty")

    video = _ingest(bad_files["empty"])  # a path can still be empty: the pipeline says so
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED
    assert "empty (0 bytes)" in video.error


def _check_reprocessing_duplicates_nothing(video: Video) -> None:
    """``video`` processed once already (the class's)."""
    keyframes = Keyframe.objects.filter(video=video).count()
    segments = TranscriptSegment.objects.filter(video=video).count()
    assert keyframes and segments

    video_process(video_id=video.pk)  # a ready video: nothing to do
    # A redelivered task after a crash in the middle of ASR: keyframes stand, ASR is redone.
    Video.objects.filter(pk=video.pk).update(status=Video.Status.PROCESSING, stage=Video.Stage.ASR)
    first_keyframe_ids = set(Keyframe.objects.filter(video=video).values_list("pk", flat=True))
    video_process(video_id=video.pk)
    # And a crash while extracting keyframes: they are replaced, not added.
    Video.objects.filter(pk=video.pk).update(status=Video.Status.PROCESSING, stage=Video.Stage.KEYFRAMES)
    video_process(video_id=video.pk)

    video.refresh_from_db()
    assert video.status == Video.Status.READY
    assert Keyframe.objects.filter(video=video).count() == keyframes
    assert TranscriptSegment.objects.filter(video=video).count() == segments
    assert set(Keyframe.objects.filter(video=video).values_list("pk", flat=True)).isdisjoint(first_keyframe_ids)
    folder = Path(settings.MEDIA_ROOT) / "keyframes" / str(video.pk)
    assert len(list(folder.glob("*.jpg"))) == keyframes


def test_process_of_a_missing_video_is_a_no_op() -> None:
    assert video_process(video_id=987654) is None


def test_an_uploaded_html_file_is_not_stored_as_html(tmp_path: Path, client_as) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "evil.html"
    page.write_text("<script>alert(1)</script>")

    video = video_ingest(path=page, title="evil")

    assert Path(video.file.name).suffix == ".bin"  # the media view will not serve it as text/html
    assert video.original_filename == "evil.html"
    # Served from our origin as bytes the browser may not sniff into a page (SecurityMiddleware's nosniff).
    served = client_as("admin").get(video.file.url)
    assert served.status_code == 200 and served["Content-Type"] == "application/octet-stream"
    assert served["X-Content-Type-Options"] == "nosniff"
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED
