"""Reads of the media wing."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from moderation.media.models import Keyframe, TranscriptSegment, Video

IN_FLIGHT = (Video.Status.UPLOADED, Video.Status.PROCESSING)


def video_list() -> QuerySet[Video]:
    """The newest videos first (the list screen pages through them)."""
    return Video.objects.select_related("created_by").order_by("-created_at", "-pk")


def video_any_in_flight(*, videos: list[Video]) -> bool:
    """Whether any of ``videos`` is still queued or processing (the list then keeps polling)."""
    return any(v.status in IN_FLIGHT for v in videos)


def video_get(*, pk: int) -> Video:
    return get_object_or_404(Video.objects.select_related("created_by"), pk=pk)


def video_keyframes(*, video: Video) -> QuerySet[Keyframe]:
    return Keyframe.objects.filter(video=video).order_by("index")


def video_selected_keyframes(*, video: Video) -> QuerySet[Keyframe]:
    """The AKS-selected keyframes with their salient patches and OCR lines (the detail page overlays them)."""
    return (
        Keyframe.objects.filter(video=video, selected=True).prefetch_related("patches", "ocr_boxes").order_by("index")
    )


def video_segments(*, video: Video) -> QuerySet[TranscriptSegment]:
    return TranscriptSegment.objects.filter(video=video).order_by("index")


def video_media_for_display(*, video: Video) -> dict[str, Any]:
    """What the shared media panels (``moderation/_video_media.html``) show of ``video``: keyframes, the
    selected ones (patches drawn over them), frames with on-screen text, transcript segments, and the
    timestamps CoT evidence links to. Reads ``video.keyframes`` / ``video.segments`` as prefetched by
    the screen's own selector (with ``keyframes__patches``), so it adds no queries of its own."""
    keyframes, segments = list(video.keyframes.all()), list(video.segments.all())
    return {
        "video": video,
        "keyframes": keyframes,
        "selected_keyframes": [kf for kf in keyframes if kf.selected],
        "frame_ocr": [kf for kf in keyframes if kf.ocr_text],
        "segments": segments,
        "times": evidence_times(keyframes=keyframes, segments=segments),
    }


def evidence_times(*, keyframes: list[Any], segments: list[Any]) -> dict[tuple[str, Any], float]:
    """Timestamps of a video's keyframes, their patches and segments, keyed like CoT evidence
    ``(kind, ref)`` (``[frame:ID]`` and ``[patch:ID]`` citations included); a patch's time is its
    keyframe's, known only where patches were prefetched (no query per keyframe)."""
    times: dict[tuple[str, Any], float] = {}
    for k in keyframes:
        times[("keyframe", k.pk)] = times[("frame", k.pk)] = k.timestamp
        prefetched = getattr(k, "_prefetched_objects_cache", {}).get("patches", ())
        for patch in prefetched:
            times[("patch", patch.pk)] = k.timestamp
    times.update({("segment", s.pk): s.start for s in segments})
    return times
