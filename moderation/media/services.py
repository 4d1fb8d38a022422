"""Writes of the media wing: ingesting a video file and running the media pipeline on it."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from moderation.errors import ModerationError
from moderation.media import extractors
from moderation.media.models import Keyframe, TranscriptSegment, Video

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".3gp", ".wmv"}
SELECTED_KEYFRAMES = 8

# The pipeline's stages in order; a stage before ``video.stage`` is done (see video_process).
PIPELINE = [Video.Stage.QUEUED, Video.Stage.PROBE, Video.Stage.KEYFRAMES, Video.Stage.ASR, Video.Stage.INFERENCE]
PROGRESS_AFTER = {Video.Stage.PROBE: 10, Video.Stage.KEYFRAMES: 40, Video.Stage.ASR: 95}


# --- Ingest ---------------------------------------------------------------------------------------


def _chunks(source: Any) -> Iterator[bytes]:
    """Read an uploaded file (Django's ``chunks()``) or a binary file object piece by piece."""
    if hasattr(source, "chunks"):
        yield from source.chunks(CHUNK_BYTES)
        return
    while True:
        data = source.read(CHUNK_BYTES)
        if not data:
            return
        yield data


def _stream_to_media(chunks: Iterable[bytes], *, max_bytes: int) -> tuple[Path, str, int]:
    """Copy ``chunks`` into a temporary file under MEDIA_ROOT, hashing as it goes; enforce ``max_bytes``."""
    tmp_dir = Path(settings.MEDIA_ROOT) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="ingest-", suffix=".part", dir=tmp_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ModerationError(
                        f"This file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB."
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def video_ingest(
    *,
    title: str,
    path: str | Path | None = None,
    upload: Any = None,
    description: str = "",
    uploader: str = "",
    created_by: Any = None,
    external_id: str | None = None,
    source: str = Video.Source.UPLOAD,
) -> Video:
    """Store a video file (a local ``path`` or an ``upload``) and queue it for processing.

    The bytes are streamed to media storage, never held in memory, and hashed on the way; the same
    bytes ingested again return the existing Video (nothing is queued twice). Raises ModerationError
    for a missing or empty source, a file over WORKBENCH_UPLOAD_MAX_BYTES, or an external id that
    already names other bytes.
    """
    if (path is None) == (upload is None):
        raise ModerationError("Give exactly one video: a file path or an uploaded file.")
    max_bytes = int(settings.WORKBENCH_UPLOAD_MAX_BYTES)
    if upload is not None:
        original = Path(getattr(upload, "name", "") or "upload.mp4").name
        declared = getattr(upload, "size", None)
        if declared is not None and declared > max_bytes:
            raise ModerationError(f"This file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB.")
        if declared == 0:
            raise ModerationError("The uploaded file is empty (0 bytes).")
        tmp, sha256, size = _stream_to_media(_chunks(upload), max_bytes=max_bytes)
    else:
        src = Path(path)  # type: ignore[arg-type]
        if not src.is_file():
            raise ModerationError(f"No such file: {src}")
        original = src.name
        with src.open("rb") as fh:
            tmp, sha256, size = _stream_to_media(_chunks(fh), max_bytes=max_bytes)

    final: Path | None = None
    try:
        with transaction.atomic():
            # Two ingests of the same bytes at once: the advisory lock makes the second find the first.
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"video-ingest:{sha256}"])
            existing = Video.objects.filter(sha256=sha256).order_by("pk").first()
            if existing is not None:
                tmp.unlink(missing_ok=True)
                return existing
            if external_id and Video.objects.filter(external_id=external_id).exists():
                raise ModerationError(f"External id {external_id!r} already belongs to a different video file.")

            name = _storage_name(original, sha256)
            final = Path(default_storage.path(name))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            video = Video.objects.create(
                title=title.strip()[:500] or Path(original).stem[:500],
                description=description,
                uploader=uploader,
                external_id=external_id or None,
                original_filename=original[:500],
                sha256=sha256,
                size_bytes=size,
                created_by=created_by,
                status=Video.Status.UPLOADED,
                stage=Video.Stage.QUEUED,
                source=source,
                file=name,
            )
            _enqueue_processing(video.pk)
    except BaseException:
        # The row did not commit, so the file it would have named must not stay behind.
        tmp.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    logger.info("ingested video %s (%s, %d bytes)", video.pk, original, size)
    return video


def _safe(name: str, default: str) -> str:
    try:
        return get_valid_filename(name)
    except SuspiciousFileOperation:  # "..", "" and friends
        return default


def _storage_name(original: str, sha256: str) -> str:
    """videos/YYYY/MM/<hash prefix>-<cleaned name><ext>: unique per content, readable on disk."""
    stem = _safe(Path(original).stem, "video")[:80]
    suffix = Path(original).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        # The media view serves files by their extension's type: never store an uploaded .html or .svg as such.
        suffix = ".bin"
    now = timezone.now()
    return f"videos/{now:%Y/%m}/{sha256[:16]}-{stem}{suffix}"


def _enqueue_processing(video_id: int) -> None:
    from moderation.media.tasks import process_video  # tasks import this module

    transaction.on_commit(lambda: process_video.delay(video_id))


# --- Processing -----------------------------------------------------------------------------------


def _stage_done(video: Video, stage: Video.Stage) -> bool:
    if video.stage not in PIPELINE:  # DONE: past every media stage
        return True
    return PIPELINE.index(Video.Stage(video.stage)) > PIPELINE.index(stage)


def _set_stage(video_id: int, stage: Video.Stage, progress: int | None = None) -> None:
    fields: dict[str, Any] = {"stage": stage, "updated_at": timezone.now()}
    if progress is not None:
        fields["progress"] = progress
    Video.objects.filter(pk=video_id).update(**fields)


@contextlib.contextmanager
def _processing_lock(video_id: int) -> Iterator[bool]:
    """A session advisory lock held while one worker processes a video.

    A redelivered message (acks_late) can arrive while the first worker is still busy; the second
    worker then finds the lock taken and leaves the video alone.
    """
    key = f"video-process:{video_id}"
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def video_process(*, video_id: int, timings: dict[str, float] | None = None) -> Video | None:
    """Run probe → keyframes → ASR on a video, doing only the stages not yet done.

    Idempotent: a stage that finished is skipped; a stage that is redone replaces its rows in one
    transaction, so a re-run never duplicates keyframes or transcript segments. A ready video is left
    as it is. Any failure marks the video failed with a message a moderator can read; nothing raises.
    Returns the video, or None when it does not exist or another worker holds it.
    ``timings`` (optional) receives the seconds spent per stage.
    """
    timings = timings if timings is not None else {}
    with _processing_lock(video_id) as got_lock:
        if not got_lock:
            logger.info("video %s is being processed by another worker; skipping", video_id)
            return None
        with transaction.atomic():
            video = Video.objects.select_for_update().filter(pk=video_id).first()
            if video is None:
                logger.warning("process_video: video %s does not exist", video_id)
                return None
            if video.status == Video.Status.READY:
                if video.stage == Video.Stage.INFERENCE:
                    # Media done but no decision yet (e.g. the worker died right after): inference is idempotent.
                    _enqueue_inference(video_id)
                return video
            if video.stage == Video.Stage.DONE:
                video.stage = Video.Stage.QUEUED
            video.status = Video.Status.PROCESSING
            video.error = ""
            video.save(update_fields=["status", "stage", "error", "updated_at"])
        try:
            _run_pipeline(video, timings)
        except ModerationError as exc:
            return _fail(video_id, str(exc))
        except Exception as exc:
            logger.exception("processing video %s failed", video_id)
            return _fail(video_id, f"Processing failed unexpectedly: {type(exc).__name__}: {exc}")

        with transaction.atomic():
            video = Video.objects.select_for_update().get(pk=video_id)
            video.status = Video.Status.READY
            video.stage = Video.Stage.INFERENCE
            video.progress = 100
            video.error = ""
            video.save(update_fields=["status", "stage", "progress", "error", "updated_at"])
            _enqueue_inference(video_id)
        logger.info("video %s ready (%s)", video_id, ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        return video


def _enqueue_inference(video_id: int) -> None:
    from moderation.inference.tasks import run_inference

    transaction.on_commit(lambda: run_inference.delay(video_id))


def _fail(video_id: int, message: str) -> Video | None:
    logger.warning("video %s failed: %s", video_id, message)
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.FAILED, error=message[:2000], updated_at=timezone.now()
    )
    return Video.objects.filter(pk=video_id).first()


def _run_pipeline(video: Video, timings: dict[str, float]) -> None:
    if not video.file:
        # Text-only items (imported records) have no media to extract; inference reads their text.
        return
    source = Path(video.file.path)
    for stage, step in (
        (Video.Stage.PROBE, _stage_probe),
        (Video.Stage.KEYFRAMES, _stage_keyframes),
        (Video.Stage.ASR, _stage_asr),
    ):
        video.refresh_from_db()
        if _stage_done(video, stage):
            continue
        _set_stage(video.pk, stage)
        started = time.perf_counter()
        step(video, source)
        timings[stage.value] = time.perf_counter() - started


def _next_stage(stage: Video.Stage) -> Video.Stage:
    return PIPELINE[PIPELINE.index(stage) + 1]


def _stage_probe(video: Video, source: Path) -> None:
    meta = extractors.probe(source)
    with transaction.atomic():
        Video.objects.filter(pk=video.pk).update(
            duration=meta.duration,
            fps=meta.fps,
            width=meta.width,
            height=meta.height,
            video_codec=meta.video_codec,
            audio_codec=meta.audio_codec,
            has_audio=meta.has_audio,
            stage=_next_stage(Video.Stage.PROBE),
            progress=PROGRESS_AFTER[Video.Stage.PROBE],
            updated_at=timezone.now(),
        )


def _stage_keyframes(video: Video, source: Path) -> None:
    fps = float(settings.KEYFRAME_FPS)
    kf_root = Path(default_storage.path("keyframes"))
    kf_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{video.pk}-", dir=kf_root))
    try:
        frames = extractors.extract_keyframes(
            source, staging, fps=fps, width=int(settings.KEYFRAME_THUMB_WIDTH), duration=video.duration or 0.0
        )
        selected = extractors.select_uniform(len(frames), SELECTED_KEYFRAMES)
        final_dir = kf_root / str(video.pk)
        with transaction.atomic():
            Video.objects.select_for_update().filter(pk=video.pk).first()
            Keyframe.objects.filter(video_id=video.pk).delete()
            shutil.rmtree(final_dir, ignore_errors=True)
            os.replace(staging, final_dir)
            Keyframe.objects.bulk_create(
                Keyframe(
                    video_id=video.pk,
                    index=f.index,
                    timestamp=f.timestamp,
                    image=f"keyframes/{video.pk}/{f.path.name}",
                    score=0.0,
                    selected=f.index in selected,
                )
                for f in frames
            )
            Video.objects.filter(pk=video.pk).update(
                stage=_next_stage(Video.Stage.KEYFRAMES),
                progress=PROGRESS_AFTER[Video.Stage.KEYFRAMES],
                updated_at=timezone.now(),
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage_asr(video: Video, source: Path) -> None:
    if not video.has_audio:
        transcript = extractors.Transcript(language="", segments=[])
    else:
        start_pct = PROGRESS_AFTER[Video.Stage.KEYFRAMES]
        span = PROGRESS_AFTER[Video.Stage.ASR] - start_pct
        duration = video.duration or 0.0
        last = [time.monotonic()]

        def on_progress(seconds: float) -> None:
            # At most one progress write per second of wall time.
            if duration > 0 and time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                pct = start_pct + int(span * min(seconds / duration, 1.0))
                Video.objects.filter(pk=video.pk).update(progress=pct)

        transcript = extractors.transcribe(source, on_progress=on_progress)
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        TranscriptSegment.objects.filter(video_id=video.pk).delete()
        TranscriptSegment.objects.bulk_create(
            TranscriptSegment(video_id=video.pk, index=i, start=s.start, end=s.end, text=s.text)
            for i, s in enumerate(transcript.segments)
        )
        Video.objects.filter(pk=video.pk).update(
            language=transcript.language[:16],
            stage=_next_stage(Video.Stage.ASR),
            progress=PROGRESS_AFTER[Video.Stage.ASR],
            updated_at=timezone.now(),
        )
