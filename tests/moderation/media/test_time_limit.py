"""A video whose media stages outrun the media queue's soft time limit (MEDIA_TASK_SOFT_TIME_LIMIT_S) is failed with
a reason an operator can act on, and stays retryable."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from moderation.media import pipeline
from moderation.media.ingest import video_ingest
from moderation.media.models import Video


def test_a_video_stopped_by_the_media_time_limit_says_so_and_can_be_retried(
    silent_clip, monkeypatch, make_user, settings
):
    settings.TASK_TIME_LIMITS_S = {**settings.TASK_TIME_LIMITS_S, "media": (3300, 3600)}
    video = video_ingest(path=silent_clip, title="A very long video", created_by=make_user("moderator"))

    def the_soft_limit(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SoftTimeLimitExceeded()  # what Celery raises inside the task at the soft limit

    monkeypatch.setattr(pipeline.os, "replace", the_soft_limit)
    pipeline.video_process(video_id=video.pk)
    video.refresh_from_db()

    assert (video.status, video.error_for_sender) == (Video.Status.FAILED, False)
    assert "55 minutes" in video.error and "MEDIA_TASK_SOFT_TIME_LIMIT_S" in video.error, video.error
    assert "unexpectedly" not in video.error

    monkeypatch.undo()
    pipeline.video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
