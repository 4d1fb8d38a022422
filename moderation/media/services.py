"""Writes of the media wing: ingesting a video file and running the media pipeline on it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from moderation.errors import ModerationError
from moderation.media import aks, extractors
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from workbench.text import storable_text

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".3gp", ".wmv"}

# The pipeline's stages in order; a stage before ``video.stage`` is done (see video_process).
PIPELINE = [
    Video.Stage.QUEUED,
    Video.Stage.PROBE,
    Video.Stage.KEYFRAMES,  # 1 fps candidates, one decode pass
    Video.Stage.OCR,  # on-screen text of (up to OCR_MAX_FRAMES) candidates
    Video.Stage.SELECT,  # AKS: score every candidate against the policy keywords, select K
    Video.Stage.PATCHES,  # patch saliency on the selected keyframes; Video.ocr_text
    Video.Stage.ASR,
    Video.Stage.HASHES,  # PDQ per frame, video signature, frame and transcript embeddings
    Video.Stage.INFERENCE,
]
PROGRESS_AFTER = {
    Video.Stage.PROBE: 5,
    Video.Stage.KEYFRAMES: 25,
    Video.Stage.OCR: 40,
    Video.Stage.SELECT: 45,
    Video.Stage.PATCHES: 50,
    Video.Stage.ASR: 90,
    Video.Stage.HASHES: 98,
}


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
    comments: list[str] | None = None,
    cover: Path | None = None,
) -> Video:
    """Store a video file (a local ``path`` or an ``upload``) and queue it for processing.

    The bytes are streamed to media storage, never held in memory, and hashed on the way; the same
    bytes ingested again return the existing Video (nothing is queued twice). Raises ModerationError
    for a missing source, an empty upload, a file over WORKBENCH_UPLOAD_MAX_BYTES, or an external id
    that already names other bytes. An empty file on the server (folder or manifest ingest) is kept:
    processing fails it with a readable reason, so the batch's record shows it.
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
                comments=list(comments or []),
            )
            if cover is not None:
                video.cover = _store_cover(cover, sha256)
                video.save(update_fields=["cover"])
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


_COVER_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _store_cover(cover: Path, sha256: str) -> str:
    suffix = cover.suffix.lower() if cover.suffix.lower() in _COVER_SUFFIXES else ".jpg"
    name = f"covers/{sha256[:16]}{suffix}"
    target = Path(default_storage.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cover, target)
    return name


def import_path_confined(path: str | Path) -> Path:
    """``path`` resolved (symlinks followed), refused unless it lies inside one of MEDIA_IMPORT_ROOTS."""
    written = [
        Path(os.path.normpath(Path(r).expanduser().absolute())) for r in settings.MEDIA_IMPORT_ROOTS if str(r).strip()
    ]
    roots = [r.resolve() for r in written]
    if not roots:
        raise ModerationError("Server-side import is disabled: set MEDIA_IMPORT_ROOTS to the folders it may read.")
    outside = ModerationError(
        f"{path} is outside the import folders (MEDIA_IMPORT_ROOTS); "
        "paths with '..' or symlinks that lead out of them are refused."
    )
    # Twice: '..' judged on the path as written (so a missing target outside is still "outside"),
    # then symlinks judged on the real path.
    lexical = Path(os.path.normpath(Path(path).expanduser().absolute()))
    if not any(lexical.is_relative_to(root) for root in [*written, *roots]):
        raise outside
    try:
        resolved = lexical.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ModerationError(f"No such file or folder: {path}") from exc
    if not any(resolved.is_relative_to(root) for root in roots):
        raise outside
    return resolved


@dataclass
class ImportReport:
    """What a bulk import did: new videos, ones already there, and per-item errors (the batch goes on)."""

    created: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.created)} new, {len(self.existing)} already imported, {len(self.errors)} failed"


def video_ingest_folder(*, folder: str | Path, created_by: Any = None) -> ImportReport:
    """Ingest every video file under ``folder`` (recursively), which must lie inside MEDIA_IMPORT_ROOTS.

    Files are visited in name order; a file whose real path leaves the roots (a symlink out) and any
    file that fails to ingest are reported and skipped. The same bytes twice give the same video.
    """
    root = import_path_confined(folder)
    if not root.is_dir():
        raise ModerationError(f"{folder} is not a folder.")
    report = ImportReport()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        shown = path.relative_to(root)
        try:
            real = import_path_confined(path)
            if not real.is_file():
                continue
            before = Video.objects.filter(sha256=_sha256_of(real)).values_list("pk", flat=True).first()
            video = video_ingest(path=real, title=path.stem, created_by=created_by, source=Video.Source.FOLDER)
        except ModerationError as exc:
            report.errors.append(f"{shown}: {exc}")
            continue
        (report.existing if before == video.pk else report.created).append(video.pk)
    return report


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_comments(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ModerationError("'comments' must be a list.")
    out = []
    for item in value:
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise ModerationError("each comment must be a string or an object with a 'text' string.")
        if text.strip():
            out.append(text.strip())
    return out


def video_import_manifest(*, manifest: str | Path, created_by: Any = None) -> ImportReport:
    """Bulk import from a JSONL manifest, one video per line, idempotent by external id.

    A line is ``{"id", "video", "title", "description", "uploader", "comments", "cover"}``; ``id``
    (or ``external_id``) and ``video`` are required. Relative paths are read from the manifest's
    folder; every path must stay inside MEDIA_IMPORT_ROOTS. A line whose id was imported before is
    counted as existing and left alone; a bad line is reported with its number and the rest go on.
    """
    manifest_path = import_path_confined(manifest)
    base = manifest_path.parent
    report = ImportReport()
    with manifest_path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                pk, created = _manifest_line(line, base=base, created_by=created_by)
            except ModerationError as exc:
                report.errors.append(f"line {number}: {exc}")
                continue
            (report.created if created else report.existing).append(pk)
    return report


EXTERNAL_ID_MAX = Video._meta.get_field("external_id").max_length or 200


def _manifest_line(line: str, *, base: Path, created_by: Any) -> tuple[int, bool]:
    try:
        item = storable_text(json.loads(line))
    except json.JSONDecodeError as exc:
        raise ModerationError(f"not valid JSON ({exc.msg}).") from exc
    except (ValueError, RecursionError) as exc:  # nested too deeply, or a number too long to read
        raise ModerationError(f"not valid JSON ({type(exc).__name__}).") from exc
    if not isinstance(item, dict):
        raise ModerationError("each line must be a JSON object.")
    external_id = str(item.get("external_id") or item.get("id") or "").strip()
    if not external_id:
        raise ModerationError("'id' is missing.")
    if len(external_id) > EXTERNAL_ID_MAX:
        raise ModerationError(f"'id' is longer than {EXTERNAL_ID_MAX} characters.")
    existing = Video.objects.filter(external_id=external_id).values_list("pk", flat=True).first()
    if existing is not None:
        return existing, False
    video_path = item.get("video") or item.get("video_path")
    if not isinstance(video_path, str) or not video_path.strip():
        raise ModerationError("'video' (the video file's path) is missing.")
    video_file = import_path_confined(base / video_path)
    cover = None
    if item.get("cover"):
        cover = import_path_confined(base / str(item["cover"]))
        if not cover.is_file():
            raise ModerationError(f"'cover' is not a file: {item['cover']}")
    fields = {k: item.get(k) or "" for k in ("title", "description", "uploader")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ModerationError("'title', 'description' and 'uploader' must be strings.")
    video = video_ingest(
        path=video_file, title=fields["title"] or video_file.stem, description=fields["description"],
        uploader=fields["uploader"][:200], external_id=external_id, source=Video.Source.MANIFEST,
        comments=_manifest_comments(item.get("comments")), cover=cover, created_by=created_by,
    )  # fmt: skip
    # The same bytes under another id return that other video: counted as existing, not created.
    return video.pk, video.external_id == external_id


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
                    # Media done but no decision yet (e.g. the worker died right after): both steps are idempotent.
                    _enqueue_after_ready(video_id)
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
            _enqueue_after_ready(video_id)
        logger.info("video %s ready (%s)", video_id, ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        return video


def _enqueue_after_ready(video_id: int) -> None:
    """A ready video goes to inference and to reproduction retrieval, once the commit is done."""
    from moderation.inference.tasks import run_inference
    from moderation.reproduction.tasks import find_candidates

    transaction.on_commit(lambda: run_inference.delay(video_id))
    transaction.on_commit(lambda: find_candidates.delay(video_id))


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
        (Video.Stage.OCR, _stage_ocr),
        (Video.Stage.SELECT, _stage_select),
        (Video.Stage.PATCHES, _stage_patches),
        (Video.Stage.ASR, _stage_asr),
        (Video.Stage.HASHES, _stage_hashes),
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
        width, height = _image_size(frames[0].path)
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
                    selected=False,  # chosen by the SELECT stage
                    width=width,
                    height=height,
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
        start_pct = PROGRESS_AFTER[Video.Stage.PATCHES]
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


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _stage_update(video_id: int, stage: Video.Stage, **fields: Any) -> None:
    """Mark ``stage`` done (move to the next one) together with the stage's own video fields."""
    Video.objects.filter(pk=video_id).update(
        stage=_next_stage(stage), progress=PROGRESS_AFTER[stage], updated_at=timezone.now(), **fields
    )


def _ocr_rows(keyframe: Keyframe, boxes: list[Any]) -> list[OcrBox]:
    return [
        OcrBox(keyframe=keyframe, index=i, text=b.text, confidence=b.confidence, x=b.x, y=b.y, w=b.w, h=b.h)
        for i, b in enumerate(boxes)
    ]


def _ocr_text(boxes: list[Any]) -> str:
    return "\n".join(b.text for b in boxes)


def _stage_ocr(video: Video, source: Path) -> None:
    """On-screen text of up to OCR_MAX_FRAMES candidates spread over the video (all of them for short videos)."""
    from moderation.media import analyzers

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    picked = [keyframes[i] for i in aks.select_uniform(len(keyframes), int(settings.OCR_MAX_FRAMES))]
    results = {kf.pk: analyzers.ocr_image(Path(kf.image.path)) for kf in picked}
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        OcrBox.objects.filter(keyframe__video_id=video.pk).delete()
        Keyframe.objects.filter(video_id=video.pk).update(ocr_done=False, ocr_text="")
        rows: list[OcrBox] = []
        for kf in picked:
            kf.ocr_done, kf.ocr_text = True, _ocr_text(results[kf.pk])
            rows += _ocr_rows(kf, results[kf.pk])
        Keyframe.objects.bulk_update(picked, ["ocr_done", "ocr_text"])
        OcrBox.objects.bulk_create(rows)
        _stage_update(video.pk, Video.Stage.OCR)


def policy_risk_keywords() -> list[str]:
    """Every tag keyword of the active policy version (empty when no policy is active yet)."""
    from moderation.policies.services import policy_version_active

    try:
        version = policy_version_active()
    except ModerationError:
        logger.warning("no active policy: keyframes are scored on visual change only")
        return []
    keywords: list[str] = []
    for category in version.taxonomy or []:
        for tag in category.get("tags") or []:
            for keyword in tag.get("keywords") or []:
                if isinstance(keyword, str) and keyword.strip() and keyword.strip() not in keywords:
                    keywords.append(keyword.strip())
    return keywords


def _nearest_ocr_texts(keyframes: list[Keyframe]) -> list[str]:
    """Each frame's on-screen text, or that of the nearest frame that was read (captions last seconds)."""
    done = [i for i, kf in enumerate(keyframes) if kf.ocr_done]
    if not done:
        return [""] * len(keyframes)
    return [keyframes[min(done, key=lambda j: (abs(j - i), j))].ocr_text for i in range(len(keyframes))]


def _stage_select(video: Video, source: Path) -> None:
    """AKS: score every 1 fps candidate against the active policy's keywords and select K of them."""
    from moderation.media import analyzers
    from moderation.media.models import FRAME_EMBEDDING_DIM

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    keywords = policy_risk_keywords()
    result = analyzers.score_frames([Path(kf.image.path) for kf in keyframes], _nearest_ocr_texts(keyframes), keywords)
    strategy = str(settings.KEYFRAME_SELECTION)
    try:
        chosen = set(aks.select(result.scores, int(settings.KEYFRAME_SELECT_K), strategy=strategy))
    except ValueError as exc:
        raise ModerationError(str(exc)) from exc
    fields = ["score", "selected"]
    embedding_model = ""
    if result.embeddings and len(result.embeddings[0]) == FRAME_EMBEDDING_DIM:
        embedding_model = result.embedding_model
        fields.append("embedding")
    elif result.embeddings:
        logger.warning(
            "%s embeds in %d dimensions, not %d: frames get the offline embedding",
            result.embedding_model, len(result.embeddings[0]), FRAME_EMBEDDING_DIM,
        )  # fmt: skip
    for i, kf in enumerate(keyframes):
        kf.score, kf.selected = result.scores[i], i in chosen
        kf.embedding = result.embeddings[i] if embedding_model else None  # type: ignore[index]
    fields.append("embedding")
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        Keyframe.objects.bulk_update(keyframes, fields, batch_size=500)
        _stage_update(
            video.pk, Video.Stage.SELECT,
            keyframe_scorer=result.scorer[:100], keyframe_selection=strategy[:50],
            frame_embedding_model=embedding_model[:200], sampled_frames=1 + len(chosen),
        )  # fmt: skip


def _stage_patches(video: Video, source: Path) -> None:
    """Salient patches of each selected keyframe, and the video's on-screen text for the prompt."""
    from moderation.media import analyzers

    selected = list(Keyframe.objects.filter(video_id=video.pk, selected=True).order_by("index"))
    missing = {kf.pk: analyzers.ocr_image(Path(kf.image.path)) for kf in selected if not kf.ocr_done}
    top_k = int(settings.PATCH_TOP_K)
    method = str(settings.PATCH_SALIENCY).lower()
    if method not in {"ocr", "vit"}:
        raise ModerationError(f"Unknown PATCH_SALIENCY {method!r}: use 'ocr' or 'vit'.")
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        if missing:
            OcrBox.objects.filter(keyframe_id__in=list(missing)).delete()
            rows: list[OcrBox] = []
            for kf in selected:
                if kf.pk in missing:
                    kf.ocr_done, kf.ocr_text = True, _ocr_text(missing[kf.pk])
                    rows += _ocr_rows(kf, missing[kf.pk])
            Keyframe.objects.bulk_update([kf for kf in selected if kf.pk in missing], ["ocr_done", "ocr_text"])
            OcrBox.objects.bulk_create(rows)
    boxes: dict[int, list[Any]] = {}
    for kf in selected:
        if method == "vit":
            boxes[kf.pk] = analyzers.patches_from_vit(
                Path(kf.image.path), source=str(settings.PATCH_VIT_MODEL), top_k=top_k
            )
        else:
            ocr = [analyzers.TextBox(b.text, b.confidence, b.x, b.y, b.w, b.h) for b in kf.ocr_boxes.all()]
            boxes[kf.pk] = analyzers.patches_from_ocr(ocr, top_k)
    lines: list[str] = []
    for kf in selected:
        for line in kf.ocr_text.splitlines():
            line = analyzers.clean_text(line)
            if line and line not in lines:
                lines.append(line)
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        Patch.objects.filter(keyframe__video_id=video.pk).delete()
        Patch.objects.bulk_create(
            Patch(keyframe=kf, rank=r, method=method, x=p.x, y=p.y, w=p.w, h=p.h, score=p.score, label=p.label)
            for kf in selected
            for r, p in enumerate(boxes[kf.pk])
        )
        patch_method = method if method == "ocr" else f"vit:{settings.PATCH_VIT_MODEL}"
        # Inference splits ocr_text on "|" (see moderation.inference.services.content_bundle_for).
        _stage_update(video.pk, Video.Stage.PATCHES, ocr_text=" | ".join(lines), patch_method=patch_method[:100])


def _stage_hashes(video: Video, source: Path) -> None:
    """PDQ of every 1 fps frame, the vPDQ-style signature, frame embeddings and the transcript embedding."""
    from moderation.media import analyzers

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    for kf in keyframes:
        kf.pdq_hash, kf.pdq_quality = analyzers.pdq(Path(kf.image.path))
        if kf.embedding is None:
            kf.embedding = analyzers.frame_embedding_offline(Path(kf.image.path))
    signature = analyzers.pdq_signature([(kf.timestamp, kf.pdq_hash, kf.pdq_quality or 0) for kf in keyframes])
    current = Video.objects.get(pk=video.pk)
    transcript = analyzers.clean_text(
        " ".join(TranscriptSegment.objects.filter(video_id=video.pk).order_by("index").values_list("text", flat=True))
    )
    # Speech first; a silent video is described by its on-screen text, then by its title.
    text = transcript or analyzers.clean_text(current.ocr_text.replace("|", " ")) or current.title
    text_vector = analyzers.text_embedding(text) if text else None
    embedding_model = current.frame_embedding_model or analyzers.OFFLINE_FRAME_EMBEDDING
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video.pk).first()
        Keyframe.objects.bulk_update(keyframes, ["pdq_hash", "pdq_quality", "embedding"], batch_size=500)
        _stage_update(
            video.pk, Video.Stage.HASHES,
            pdq_signature=signature, text_embedding=text_vector, frame_embedding_model=embedding_model[:200],
        )  # fmt: skip
