"""Reads of the media wing."""

from __future__ import annotations

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
