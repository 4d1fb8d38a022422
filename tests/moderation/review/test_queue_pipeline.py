"""The queue list says how many videos are still on their way to the queues (or stopped in the pipeline) instead of
"Nothing is waiting", polls faster while any is processing, and names none of them."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.media.models import Video
from moderation.review.selectors import review_videos_in_pipeline
from tests.factories import DecidedVideoFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _queue_page(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    response = client.get(reverse("moderation:queue"))
    assert response.status_code == 200
    return response.content.decode()


def test_videos_still_processing_are_counted_instead_of_nothing_is_waiting(make_user):
    VideoFactory(title="secret upload one", status=Video.Status.PROCESSING, stage=Video.Stage.OCR)
    VideoFactory(title="secret upload two", status=Video.Status.UPLOADED)
    VideoFactory(title="secret waiting for its model", status=Video.Status.READY, stage=Video.Stage.INFERENCE)
    DecidedVideoFactory(title="already decided", status=Video.Status.PROCESSING)  # its items are in the queues
    VideoFactory(title="done long ago", status=Video.Status.READY, stage=Video.Stage.DONE)

    html = _queue_page(make_user("moderator"))

    assert "Nothing is waiting in your queues yet." in html
    assert "Nothing is waiting in your queues." not in html
    assert re.search(r'id="queue-pipeline" data-processing="3"', html)
    assert "3 videos are still being processed" in html
    assert 'hx-trigger="every 5s"' in html  # polls faster until they are routed
    # A count, never a title: which queue (restricted or not) a video goes to is not known before its decision.
    assert "secret" not in html


def test_polling_falls_back_to_the_slow_refresh_once_nothing_is_processing(make_user):
    user = make_user("moderator")
    video = VideoFactory(status=Video.Status.PROCESSING)
    assert 'hx-trigger="every 5s"' in _queue_page(user)

    Video.objects.filter(pk=video.pk).update(status=Video.Status.READY, stage=Video.Stage.DONE)
    html = _queue_page(user)

    assert 'hx-trigger="every 15s"' in html
    assert "queue-pipeline" not in html
    assert "Nothing is waiting in your queues." in html


def test_failed_videos_say_where_to_look_to_those_who_see_ops(make_user):
    VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.ASR)
    dismissed = VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.PROBE)
    Video.objects.filter(pk=dismissed.pk).update(failure_dismissed_at="2026-12-01T00:00:00Z")

    moderator = _queue_page(make_user("moderator"))
    admin = _queue_page(make_user("admin"))

    assert "1 video has failed processing and will reach no queue until retried" in moderator
    assert "an admin retries it from the ops page" in moderator
    assert reverse("moderation:ops_dashboard") not in moderator
    assert f'href="{reverse("moderation:ops_dashboard")}#ops-failed"' in admin
    assert 'hx-trigger="every 15s"' in moderator  # nothing processing: no fast polling for a failure


def test_the_pipeline_count_is_one_query_however_many_videos(make_user):
    VideoFactory(status=Video.Status.PROCESSING)
    with CaptureQueriesContext(connection) as small:
        review_videos_in_pipeline()
    for _ in range(30):
        VideoFactory(status=Video.Status.PROCESSING)
        DecidedVideoFactory()
    with CaptureQueriesContext(connection) as big:
        counts = review_videos_in_pipeline()
    assert len(small.captured_queries) == len(big.captured_queries) == 1
    assert counts == {"processing": 31, "failed": 0, "unprocessable": 0}


def test_a_video_whose_solo_infer_worker_was_ended_at_the_hard_limit_is_failed_not_processing(make_user):
    """The infer worker's watchdog recorded evaluations, training jobs and re-runs before ending the process, not a
    video's own inference: it stayed "processing" (counted here, the list polling every 5 s) until the broker handed
    the message out again, CELERY_VISIBILITY_TIMEOUT (6 h) later. A video decided as the limit came is left as is."""
    from moderation.inference.tasks import run_inference
    from workbench.worker_limits import _RECORDERS, time_limit_text

    stuck = VideoFactory(status=Video.Status.READY, stage=Video.Stage.INFERENCE)
    decided = DecidedVideoFactory(status=Video.Status.READY, stage=Video.Stage.DONE)
    name = "moderation.inference.tasks.run_inference"
    message = time_limit_text(task_name=name, seconds=float(run_inference.time_limit or 3 * 3600), soft=False)

    _RECORDERS[name]((stuck.pk,), {}, message)
    _RECORDERS[name]((), {"video_id": decided.pk}, message)

    stuck.refresh_from_db()
    decided.refresh_from_db()
    assert stuck.status == Video.Status.FAILED and "The worker was restarted." in stuck.error
    assert decided.status == Video.Status.READY and not decided.error
    assert review_videos_in_pipeline() == {"processing": 0, "failed": 1, "unprocessable": 0}
