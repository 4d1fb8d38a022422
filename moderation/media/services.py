"""Writes of the media wing besides ingest and the pipeline: what a screen finds missing in media storage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from moderation.media.models import Keyframe, Video
from moderation.media.selectors import IN_FLIGHT
from moderation.signals import media_missing_changed
from workbench import storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaCheck:
    """What a screen may show of a video's stored files. ``missing``: names found missing (the template
    draws a notice in their place); ``message``: one line for the user, empty when all is there."""

    missing: frozenset[str] = field(default_factory=frozenset)
    message: str = ""
    unavailable: bool = False


def video_media_verify(*, video: Video, keyframes: list[Keyframe] | None = None, by: Any = None) -> MediaCheck:
    """Check that the stored files a screen shows of ``video`` (video, cover, keyframe images) exist, and
    record what is missing on the video (``Video.missing_media``) when that changed since the last check.

    ``keyframes`` defaults to ``video.keyframes.all()`` (prefetched by the review screens, so no query).
    A change sends ``media_missing_changed`` (the review wing writes it to the audit log) and is logged
    as a warning. One HEAD per file plus one listing of the keyframe folder with object storage; a
    store that does not answer records nothing and says so. A video still processing is not checked
    (its keyframes are being replaced)."""
    if video.status in IN_FLIGHT:
        return MediaCheck()
    frames = list(video.keyframes.all()) if keyframes is None else keyframes
    kinds: dict[str, str] = {str(kf.image.name): "keyframe" for kf in frames if kf.image}
    if video.cover:
        kinds[str(video.cover.name)] = "cover"
    if video.file:
        kinds[str(video.file.name)] = "video"
    if not kinds:
        return MediaCheck()
    try:
        missing = storage.missing_names(kinds)
    except storage.StorageUnavailable as exc:
        logger.warning("video %s: cannot check its media: %s", video.pk, exc)
        return MediaCheck(
            message=f"Media storage is not answering ({exc}); the video and images may not load.", unavailable=True
        )
    names = sorted(missing)
    if names != sorted(video.missing_media or []):
        _record(video, names, by)
    if not names:
        return MediaCheck()
    return MediaCheck(missing=frozenset(names), message=_message(names, kinds, len(frames)))


def _record(video: Video, names: list[str], by: Any) -> None:
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        before = set(locked.missing_media or [])
        if set(names) == before:
            video.missing_media = names  # another request recorded it meanwhile
            return
        locked.missing_media, locked.missing_media_checked_at = names, timezone.now()
        locked.save(update_fields=["missing_media", "missing_media_checked_at", "updated_at"])
        new = sorted(set(names) - before)
        media_missing_changed.send(sender=Video, video=locked, missing=names, new=new, by=by)
    video.missing_media, video.missing_media_checked_at = locked.missing_media, locked.missing_media_checked_at
    if names:
        logger.warning("video %s: missing from media storage: %s", video.pk, ", ".join(names))
    else:
        logger.info("video %s: its media is complete again", video.pk)


def _message(names: list[str], kinds: dict[str, str], keyframe_count: int) -> str:
    parts = []
    if any(kinds.get(n) == "video" for n in names):
        parts.append("the video file")
    if any(kinds.get(n) == "cover" for n in names):
        parts.append("the cover image")
    frames = sum(1 for n in names if kinds.get(n) == "keyframe")
    if frames:
        parts.append(f"{frames} of {keyframe_count} keyframe images")
    what = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return (
        f"Missing from media storage: {what}. This is recorded for operations (the video is flagged and the "
        "audit log has the names); judge from what is shown, or skip the item."
    )
