"""Media queue tasks: thin wrappers that re-fetch by id and call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from moderation.media.pipeline import video_fail, video_process
from workbench.queues import LONG_TASK_OPTIONS
from workbench.storage import STORAGE_RETRIES, StorageUnavailable, storage_retry_delay

logger = logging.getLogger(__name__)


@shared_task(name="moderation.media.tasks.process_video", bind=True, **LONG_TASK_OPTIONS)
def process_video(self: Any, video_id: int) -> str:
    """Run the media pipeline on one video (the stages it has not finished), then hand it on to inference.

    Safe to run twice (see ``video_process``); never raises for a bad file: the video is marked failed.
    When media storage does not answer, the task is retried later (finished stages stay done); after
    STORAGE_RETRIES tries the video is marked failed with the reason.
    """
    try:
        video = video_process(video_id=int(video_id))
    except StorageUnavailable as exc:
        if self.request.retries >= STORAGE_RETRIES:
            video_fail(video_id=int(video_id), message=f"Media storage stayed unreachable: {exc}")
            return "failed"
        delay = storage_retry_delay(self.request.retries)
        raise self.retry(exc=exc, countdown=delay, max_retries=STORAGE_RETRIES) from exc
    return video.status if video is not None else "skipped"
