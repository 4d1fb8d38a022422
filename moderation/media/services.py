"""Writes of the media wing besides ingest and the pipeline: what a screen finds missing in media storage."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
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

    def plays(self, video: Video) -> bool:
        """Whether a player for ``video`` can play: it has a video file and this check did not find it
        missing (a store that did not answer is given the benefit of the doubt; its notice says so)."""
        return bool(video.file) and str(video.file.name) not in self.missing

    def shows_image(self, keyframes: list[Keyframe]) -> bool:
        """Whether any of ``keyframes`` has an image this check did not find missing."""
        return any(kf.image and str(kf.image.name) not in self.missing for kf in keyframes)


def video_media_verify(*, video: Video, keyframes: list[Keyframe] | None = None, by: Any = None) -> MediaCheck:
    """Check that the stored files a screen shows of ``video`` (video, cover, keyframe images) exist, and
    record what is missing on the video (``Video.missing_media``) when that changed since the last check.

    ``keyframes`` defaults to ``video.keyframes.all()`` (prefetched by the review screens, so no query).
    A change sends ``media_missing_changed`` (the review wing writes it to the audit log) and is logged
    as a warning. One HEAD per file plus one listing of the keyframe folder with object storage; a
    store that does not answer records nothing and says so. A video still processing is not checked
    (its keyframes are being replaced).

    With object storage, a check that found everything is trusted for ``MEDIA_CHECK_CACHE_S`` seconds in
    this web process (the review screen and its prefetch of the next item then cost no request); a
    video with missing files is checked on every render, so the notice goes as soon as they are back."""
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
    trusted_key = _complete_key(video, kinds)
    if trusted_key and not video.missing_media and cache.get(trusted_key):
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
        if trusted_key:
            cache.set(trusted_key, True, settings.MEDIA_CHECK_CACHE_S)
        return MediaCheck()
    return MediaCheck(missing=frozenset(names), message=_message(names, kinds, len(frames)))


def _complete_key(video: Video, kinds: dict[str, str]) -> str:
    """The cache key under which a complete check of exactly these stored names is remembered; empty when
    checks are not remembered (local storage: a file check is cheap; or ``MEDIA_CHECK_CACHE_S`` is 0)."""
    if settings.MEDIA_CHECK_CACHE_S <= 0 or not storage.is_object_storage():
        return ""
    names = hashlib.sha256("\n".join(sorted(kinds)).encode()).hexdigest()[:24]
    return f"media-complete:{video.pk}:{names}"


def _record(video: Video, names: list[str], by: Any) -> None:
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        before = set(locked.missing_media or [])
        if set(names) == before:
            video.missing_media = names  # another request recorded it meanwhile
            return
        locked.missing_media, locked.missing_media_changed_at = names, timezone.now()
        locked.save(update_fields=["missing_media", "missing_media_changed_at", "updated_at"])
        new = sorted(set(names) - before)
        media_missing_changed.send(sender=Video, video=locked, missing=names, new=new, by=by)
    video.missing_media, video.missing_media_changed_at = locked.missing_media, locked.missing_media_changed_at
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
