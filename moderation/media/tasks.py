"""Media queue tasks: thin wrappers that re-fetch by id and call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from moderation.media.pipeline import video_process
from workbench.queues import LONG_TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="moderation.media.tasks.process_video", **LONG_TASK_OPTIONS)
def process_video(video_id: int) -> str:
    """Run the media pipeline on one video (the stages it has not finished), then hand it on to inference.

    Safe to run twice (see ``video_process``); never raises for a bad file: the video is marked failed.
    """
    video = video_process(video_id=int(video_id))
    return video.status if video is not None else "skipped"
