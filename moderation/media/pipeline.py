"""The media pipeline: seven stages from a stored file to everything inference and retrieval read.

probe → 1 fps candidates → OCR → AKS selection → patches → ASR → hashes/embeddings, then the video is ready
and goes to inference. Each stage runs outside a transaction (the slow part) and then stores its results and
marks itself done in one short transaction under the video's row lock (``_stage_lock`` + ``_finish_stage``), so a
stage is either fully stored or redone; OCR rows have one writer (``_store_ocr``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from moderation.errors import (
    DamagedVideoError,
    ModerationError,
    NotAVideoError,
    SenderError,
    server_storage_error,
)
from moderation.media import aks, extractors
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from moderation.signals import video_ready
from workbench import storage
from workbench.db import session_lock_try

if TYPE_CHECKING:
    from moderation.media.analyzers import FrameStore

logger = logging.getLogger(__name__)

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
# This task's scratch folder: where stored files are downloaded to with object storage (see _run_pipeline).
_SCRATCH: contextvars.ContextVar[Path] = contextvars.ContextVar("media_scratch")

PROGRESS_AFTER = {
    Video.Stage.PROBE: 5,
    Video.Stage.KEYFRAMES: 25,
    Video.Stage.OCR: 40,
    Video.Stage.SELECT: 45,
    Video.Stage.PATCHES: 50,
    Video.Stage.ASR: 90,
    Video.Stage.HASHES: 98,
}


# --- Driver: lock, run the missing stages, mark ready -------------------------------------------


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
    with session_lock_try(f"video-process:{video_id}") as got:
        yield got


def video_process(*, video_id: int, timings: dict[str, float] | None = None) -> Video | None:
    """Run the media stages a video has not finished yet (see PIPELINE), then mark it ready and queue inference.

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
            video.error, video.error_for_sender, video.error_kind = "", False, Video.ErrorKind.OTHER
            video.save(update_fields=["status", "stage", "error", "error_for_sender", "error_kind", "updated_at"])
        try:
            _run_pipeline(video, timings)
        except NotAVideoError as exc:
            return _fail(video_id, str(exc), for_sender=True, kind=Video.ErrorKind.NOT_VIDEO)
        except DamagedVideoError as exc:
            return _fail(video_id, str(exc), for_sender=True, kind=Video.ErrorKind.DAMAGED)
        except SenderError as exc:
            return _fail(video_id, str(exc), for_sender=True)
        except ModerationError as exc:
            return _fail(video_id, str(exc))
        except storage.MediaMissing as exc:
            return _fail(video_id, f"A stored file is missing: {exc} Upload the video again.")
        except storage.StorageUnavailable as exc:
            # Transient: say so on the video and let the task retry it (the finished stages stay done).
            Video.objects.filter(pk=video_id).update(
                error=f"Waiting for media storage: {exc} Processing will be retried."[:2000],
                error_for_sender=False,
                updated_at=timezone.now(),
            )
            raise
        except SoftTimeLimitExceeded:
            # Celery raised it inside a stage at the media queue's soft limit: the hard one would kill the child
            # and leave the video "processing" for ever, so say which limit stopped it.
            minutes = settings.TASK_TIME_LIMITS_S["media"][0] / 60
            return _fail(
                video_id,
                f"Processing was stopped after {minutes:.0f} minutes, the media workers' time limit "
                "(MEDIA_TASK_SOFT_TIME_LIMIT_S). Retry it once the limit is raised for videos this long.",
            )
        except Exception as exc:
            logger.exception("processing video %s failed", video_id)
            if isinstance(exc, OSError) and exc.errno is not None:
                # A read or write of ours failed (a full disk): not the file's fault, Retry once storage is fixed.
                # Without an errno an OSError is a library's complaint about data (Pillow's truncated image).
                reason = exc.strerror or os.strerror(exc.errno)
                return _fail(video_id, str(server_storage_error(reason)))
            return _fail(video_id, f"Processing failed unexpectedly: {type(exc).__name__}: {exc}")

        with transaction.atomic():
            video = Video.objects.select_for_update().get(pk=video_id)
            video.status = Video.Status.READY
            video.stage = Video.Stage.INFERENCE
            video.progress = 100
            video.error, video.error_for_sender, video.error_kind = "", False, Video.ErrorKind.OTHER
            fields = ["status", "stage", "progress", "error", "error_for_sender", "error_kind", "updated_at"]
            video.save(update_fields=fields)
            _enqueue_after_ready(video_id)
        logger.info("video %s ready (%s)", video_id, ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        return video


def _enqueue_after_ready(video_id: int) -> None:
    """A ready video goes on to inference and reproduction retrieval (their subscribers queue them on commit)."""
    video_ready.send(sender=Video, video_id=video_id)


def video_fail(*, video_id: int, message: str, for_sender: bool = False) -> Video | None:
    """Mark a video failed with ``message`` (e.g. its task gave up waiting for media storage).
    ``for_sender``: the message is written for whoever sent the video (``SenderError``), not the workbench's."""
    return _fail(video_id, message, for_sender=for_sender)


def _fail(video_id: int, message: str, *, for_sender: bool = False, kind: str = Video.ErrorKind.OTHER) -> Video | None:
    """Record the failure where it happens, with whom its text is for: a platform reads a sender's message as
    it is and only a sentence for any other (``video_error_for``), whatever its wording; and its ``kind``
    (``Video.ErrorKind``: a file that is not a video is dismissed, not retried)."""
    logger.warning("video %s failed: %s", video_id, message)
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.FAILED,
        error=message[:2000],
        error_for_sender=for_sender,
        error_kind=kind,
        failure_dismissed_at=None,
        failure_dismissed_by=None,
        updated_at=timezone.now(),
    )
    return Video.objects.filter(pk=video_id).first()


def _run_pipeline(video: Video, timings: dict[str, float]) -> None:
    if not video.file:
        # Text-only items (imported records) have no media to extract; inference reads their text.
        return
    with storage.scratch_dir(f"v{video.pk}") as scratch:
        token = _SCRATCH.set(scratch)
        try:
            _run_stages(video, storage.local_copy(video.file.name, scratch), timings)
        finally:
            _SCRATCH.reset(token)


def _run_stages(video: Video, source: Path, timings: dict[str, float]) -> None:
    from moderation.media.analyzers import FrameStore

    frames = FrameStore()  # decoded once by the keyframe stage, read by every later stage
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
        step(video, source, frames)
        timings[stage.value] = time.perf_counter() - started


# --- What every stage shares: the row lock, the stage update, the OCR writer ---------------------


def _image(kf: Keyframe) -> Path:
    """A local path of the keyframe's image: the stored file itself, or this task's scratch copy."""
    return storage.local_copy(kf.image.name, _SCRATCH.get())


def _next_stage(stage: Video.Stage) -> Video.Stage:
    return PIPELINE[PIPELINE.index(stage) + 1]


@contextlib.contextmanager
def _stage_lock(video_id: int) -> Iterator[None]:
    """One transaction holding the video's row lock: where a stage replaces its rows and marks itself done."""
    with transaction.atomic():
        Video.objects.select_for_update().filter(pk=video_id).first()
        yield


def _finish_stage(video_id: int, stage: Video.Stage, **fields: Any) -> None:
    """Mark ``stage`` done (move to the next one) together with the stage's own video fields.

    Called inside ``_stage_lock``, after the stage's rows are written, so a stage is stored whole or redone.
    """
    Video.objects.filter(pk=video_id).update(
        stage=_next_stage(stage), progress=PROGRESS_AFTER[stage], updated_at=timezone.now(), **fields
    )


def _store_ocr(keyframes: list[Keyframe], results: dict[int, list[Any]]) -> None:
    """Replace the OCR boxes and text of ``keyframes`` with ``results`` (keyframe pk → text boxes).

    The one writer of OcrBox rows; called inside ``_stage_lock``.
    """
    OcrBox.objects.filter(keyframe__in=keyframes).delete()
    rows: list[OcrBox] = []
    for kf in keyframes:
        boxes = results[kf.pk]
        kf.ocr_done, kf.ocr_text = True, "\n".join(b.text for b in boxes)
        rows += [
            OcrBox(keyframe=kf, index=i, text=b.text, confidence=b.confidence, x=b.x, y=b.y, w=b.w, h=b.h)
            for i, b in enumerate(boxes)
        ]
    Keyframe.objects.bulk_update(keyframes, ["ocr_done", "ocr_text"])
    OcrBox.objects.bulk_create(rows)


# --- The stages, in pipeline order ---------------------------------------------------------------


def _stage_probe(video: Video, source: Path, frames: FrameStore) -> None:
    meta = extractors.probe(source)
    with _stage_lock(video.pk):
        _finish_stage(
            video.pk, Video.Stage.PROBE,
            duration=meta.duration, fps=meta.fps, width=meta.width, height=meta.height,
            video_codec=meta.video_codec, audio_codec=meta.audio_codec, has_audio=meta.has_audio,
        )  # fmt: skip


def keyframe_fps(duration: float) -> float:
    """The candidate keyframe rate for a video of ``duration`` seconds: KEYFRAME_FPS, or lower for a long video, so
    that it has at most KEYFRAME_MAX_CANDIDATES candidates spread over its whole length. At KEYFRAME_FPS alone a
    0.5 MB file of a still picture declaring ten hours made 36,000 JPEGs (142 MB), as many rows, and as many frames
    for every later stage to score."""
    fps = float(settings.KEYFRAME_FPS)
    most = int(settings.KEYFRAME_MAX_CANDIDATES)
    if most > 0 and duration * fps > most:
        return most / duration
    return fps


def _stage_keyframes(video: Video, source: Path, frames: FrameStore) -> None:
    """1 fps candidates in one decode pass, written to a staging folder and swapped in under the lock."""
    if storage.is_object_storage():
        return _stage_keyframes_object_store(video, source, frames)
    fps = keyframe_fps(video.duration or 0.0)
    kf_root = Path(default_storage.path("keyframes"))
    kf_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{video.pk}-", dir=kf_root))
    try:
        extracted = extractors.extract_keyframes(
            source, staging, fps=fps, width=int(settings.KEYFRAME_THUMB_WIDTH), duration=video.duration or 0.0
        )
        width, height = _image_size(extracted[0].path)
        final_dir = kf_root / str(video.pk)
        with _stage_lock(video.pk):
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
                for f in extracted
            )
            _finish_stage(video.pk, Video.Stage.KEYFRAMES)
        for f in extracted:  # each thumbnail is decoded once, here, for every later consumer
            frames.image(f.index, final_dir / f.path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage_keyframes_object_store(video: Video, source: Path, frames: FrameStore) -> None:
    """Object storage: frames are extracted into this task's scratch folder (where the later stages read
    them) and uploaded before the rows naming them commit; names are fixed per video, so a redone stage
    overwrites its own objects, and frames a previous run had beyond the new ones are deleted afterwards."""
    prefix = f"keyframes/{video.pk}"
    frames_dir = _SCRATCH.get() / prefix
    shutil.rmtree(frames_dir, ignore_errors=True)
    frames_dir.mkdir(parents=True)
    extracted = extractors.extract_keyframes(
        source, frames_dir, fps=keyframe_fps(video.duration or 0.0), width=int(settings.KEYFRAME_THUMB_WIDTH),
        duration=video.duration or 0.0,
    )  # fmt: skip
    width, height = _image_size(extracted[0].path)
    before = set(storage.list_names(prefix))
    names = set(storage.store_tree(frames_dir, prefix))
    with _stage_lock(video.pk):
        Keyframe.objects.filter(video_id=video.pk).delete()
        Keyframe.objects.bulk_create(
            Keyframe(
                video_id=video.pk, index=f.index, timestamp=f.timestamp, image=f"{prefix}/{f.path.name}",
                score=0.0, selected=False, width=width, height=height,
            )
            for f in extracted
        )  # fmt: skip
        _finish_stage(video.pk, Video.Stage.KEYFRAMES)
    for stale in sorted(before - names):
        storage.delete(stale)
    for f in extracted:  # each thumbnail is decoded once, here (from this task's scratch copy)
        frames.image(f.index, f.path)


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def ocr_candidates(hashes: list[str], *, change_distance: int, limit: int) -> list[int]:
    """Which 1 fps frames to read: the first, then each whose PDQ hash is more than ``change_distance``
    bits from the last frame picked (its content changed), at most ``limit`` of them spread evenly.

    A static shot with a subtitle is read once; the selection stage later reads the keyframes it picks
    that are not among these (see _stage_patches), from the same per-video line cache.
    """
    from moderation.media.analyzers import hamming

    picked: list[int] = []
    for i, h in enumerate(hashes):
        if not picked or not h or not hashes[picked[-1]] or hamming(hashes[picked[-1]], h) > change_distance:
            picked.append(i)
    if len(picked) > limit:
        picked = [picked[j] for j in sorted(aks.select_uniform(len(picked), limit))]
    return picked


def _stage_ocr(video: Video, source: Path, frames: FrameStore) -> None:
    """On-screen text of the frames whose content changed (PDQ), at most OCR_MAX_FRAMES of them."""
    from moderation.media import analyzers

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    hashes = [frames.pdq(kf.index, _image(kf))[0] for kf in keyframes]
    picked = [
        keyframes[i]
        for i in ocr_candidates(
            hashes, change_distance=int(settings.OCR_CHANGE_DISTANCE), limit=int(settings.OCR_MAX_FRAMES)
        )
    ]
    boxes = analyzers.ocr_frames([frames.image(kf.index, _image(kf)) for kf in picked], cache=frames.ocr_cache)
    results = {kf.pk: found for kf, found in zip(picked, boxes, strict=True)}
    with _stage_lock(video.pk):
        # A redone stage starts from nothing: frames it does not pick this time keep no stale text.
        OcrBox.objects.filter(keyframe__video_id=video.pk).delete()
        Keyframe.objects.filter(video_id=video.pk).update(ocr_done=False, ocr_text="")
        _store_ocr(picked, results)
        _finish_stage(video.pk, Video.Stage.OCR)


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


def _stage_select(video: Video, source: Path, frames: FrameStore) -> None:
    """AKS: score every 1 fps candidate against the active policy's keywords and select K of them."""
    from moderation.media import analyzers
    from moderation.media.models import FRAME_EMBEDDING_DIM

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    keywords = policy_risk_keywords()
    images = [frames.image(kf.index, _image(kf)) for kf in keyframes]
    result = analyzers.score_frames(images, _nearest_ocr_texts(keyframes), keywords)
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
    with _stage_lock(video.pk):
        Keyframe.objects.bulk_update(keyframes, fields, batch_size=500)
        _finish_stage(
            video.pk, Video.Stage.SELECT,
            keyframe_scorer=result.scorer[:100], keyframe_selection=strategy[:50],
            frame_embedding_model=embedding_model[:200], sampled_frames=1 + len(chosen),
        )  # fmt: skip


def _stage_patches(video: Video, source: Path, frames: FrameStore) -> None:
    """Salient patches of each selected keyframe, and the video's on-screen text for the prompt."""
    from moderation.media import analyzers

    selected = list(Keyframe.objects.filter(video_id=video.pk, selected=True).order_by("index"))
    unread = [kf for kf in selected if not kf.ocr_done]
    read = analyzers.ocr_frames([frames.image(kf.index, _image(kf)) for kf in unread], cache=frames.ocr_cache)
    missing = {kf.pk: found for kf, found in zip(unread, read, strict=True)}
    top_k = int(settings.PATCH_TOP_K)
    method = str(settings.PATCH_SALIENCY).lower()
    if method not in analyzers.PATCH_SALIENCY_METHODS:
        raise ModerationError(
            f"Unknown PATCH_SALIENCY {method!r}: use one of {', '.join(analyzers.PATCH_SALIENCY_METHODS)}."
        )
    if missing:
        # Selected frames the OCR stage did not read (it reads at most OCR_MAX_FRAMES): read them now.
        with _stage_lock(video.pk):
            _store_ocr([kf for kf in selected if kf.pk in missing], missing)
    boxes: dict[int, list[Any]] = {}
    for kf in selected:
        if method == "vit":
            boxes[kf.pk] = analyzers.patches_from_vit(_image(kf), source=str(settings.PATCH_VIT_MODEL), top_k=top_k)
        else:
            ocr = [analyzers.TextBox(b.text, b.confidence, b.x, b.y, b.w, b.h) for b in kf.ocr_boxes.all()]
            boxes[kf.pk] = analyzers.patches_from_ocr(ocr, top_k)
    lines: list[str] = []
    for kf in selected:
        for line in kf.ocr_text.splitlines():
            line = analyzers.clean_text(line)
            if line and line not in lines:
                lines.append(line)
    with _stage_lock(video.pk):
        Patch.objects.filter(keyframe__video_id=video.pk).delete()
        Patch.objects.bulk_create(
            Patch(keyframe=kf, rank=r, method=method, x=p.x, y=p.y, w=p.w, h=p.h, score=p.score, label=p.label)
            for kf in selected
            for r, p in enumerate(boxes[kf.pk])
        )
        patch_method = method if method == "ocr" else f"vit:{settings.PATCH_VIT_MODEL}"
        # Inference splits ocr_text on "|" (see moderation.inference.services.content_bundle_for).
        _finish_stage(video.pk, Video.Stage.PATCHES, ocr_text=" | ".join(lines), patch_method=patch_method[:100])


def _stage_asr(video: Video, source: Path, frames: FrameStore) -> None:
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
    with _stage_lock(video.pk):
        TranscriptSegment.objects.filter(video_id=video.pk).delete()
        TranscriptSegment.objects.bulk_create(
            TranscriptSegment(video_id=video.pk, index=i, start=s.start, end=s.end, text=s.text)
            for i, s in enumerate(transcript.segments)
        )
        _finish_stage(video.pk, Video.Stage.ASR, language=transcript.language[:16])


def _stage_hashes(video: Video, source: Path, frames: FrameStore) -> None:
    """PDQ of every 1 fps frame, the vPDQ-style signature, frame embeddings, the video's (their normalized mean) and
    the transcript embedding."""
    from moderation.media import analyzers

    keyframes = list(Keyframe.objects.filter(video_id=video.pk).order_by("index"))
    for kf in keyframes:
        kf.pdq_hash, kf.pdq_quality = frames.pdq(kf.index, _image(kf))
        if kf.embedding is None:
            kf.embedding = analyzers.frame_embedding_offline(frames.image(kf.index, _image(kf)))
    signature = analyzers.pdq_signature([(kf.timestamp, kf.pdq_hash, kf.pdq_quality or 0) for kf in keyframes])
    current = Video.objects.get(pk=video.pk)
    transcript = analyzers.clean_text(
        " ".join(TranscriptSegment.objects.filter(video_id=video.pk).order_by("index").values_list("text", flat=True))
    )
    # Speech first; a silent video is described by its on-screen text, then by its title.
    text = transcript or analyzers.clean_text(current.ocr_text.replace("|", " ")) or current.title
    text_vector = analyzers.text_embedding(text) if text else None
    embedding_model = current.frame_embedding_model or analyzers.OFFLINE_FRAME_EMBEDDING
    visual_vector = analyzers.video_embedding([kf.embedding for kf in keyframes if kf.embedding is not None])
    with _stage_lock(video.pk):
        Keyframe.objects.bulk_update(keyframes, ["pdq_hash", "pdq_quality", "embedding"], batch_size=500)
        _finish_stage(
            video.pk, Video.Stage.HASHES,
            pdq_signature=signature, text_embedding=text_vector, frame_embedding_model=embedding_model[:200],
            visual_embedding=visual_vector,
        )  # fmt: skip
