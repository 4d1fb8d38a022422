"""A tag-candidates try ended at the media queue's hard time limit is recorded at once by the prefork worker's parent
(``workbench.worker_limits``: Celery's ``task_failure`` with ``TimeLimitExceeded`` calls the task's recorder), so
beat's next sweep (every minute) tries it again. Before, nothing recorded it: the sweep found the try only past the
limit plus its 5-minute margin (~65 minutes with the default 60-minute limit).

A real `celery worker --pool prefork` on the media queue with a 3 s hard limit; the try is held past it by a lock on
the tag table its first read needs (taken after the try is recorded running)."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import psutil
import pytest
from django.db import connection, transaction
from django.utils import timezone

from moderation.review.services import review_queue_default
from moderation.tagging.models import Tag, VideoTagState
from moderation.tagging.services import TAG_TRIES, tag_tries_recover
from tests.broker import broker_client
from tests.factories import DecidedVideoFactory
from tests.workers import prefork_worker, stop_worker, wait_for
from workbench.celery import app
from workbench.queues import TaskQueue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

NAME = "moderation.tagging.tasks.generate_tag_candidates"


def _running(video_id: int) -> bool:
    return VideoTagState.objects.filter(video_id=video_id, candidates_started_at__isnull=False).exists()


def _gone(processes: list[psutil.Process]) -> bool:
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def _error(video_id: int) -> str:
    return VideoTagState.objects.filter(video_id=video_id).values_list("error", flat=True).first() or ""


def test_a_candidates_try_killed_at_the_hard_limit_is_recorded_and_due_to_the_next_sweep(tmp_path) -> None:
    review_queue_default()
    video = DecidedVideoFactory()
    broker = broker_client()
    broker.delete(TaskQueue.MEDIA.value)
    log = tmp_path / "worker.log"
    worker = prefork_worker(TaskQueue.MEDIA.value, log, MEDIA_TASK_SOFT_TIME_LIMIT_S="0", MEDIA_TASK_TIME_LIMIT_S="3")
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Tag._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            sent = time.monotonic()
            # The limits as this worker's settings give them (a sender's message names its own, here the default's).
            app.send_task(NAME, args=[video.pk], queue=TaskQueue.MEDIA.value, time_limit=3, soft_time_limit=0)
            wait_for(lambda: _running(video.pk), 90, "the try recorded running", log)
            children = psutil.Process(worker.pid).children()  # the pool's child, now held by the lock
            wait_for(lambda: "Stopped after" in _error(video.pk), 90, "the hard limit's record", log)
            recorded_after = time.monotonic() - sent
            # The parent records the try before it ends the child: the lock stays until the child is gone, or a child
            # still alive (a loaded machine) would find the tag table free, finish and end its try as finished.
            wait_for(lambda: _gone(children), 30, "the ended child's exit", log)
        state = VideoTagState.objects.get(video=video)
    finally:
        stop_worker(worker)
    print(f"recorded {recorded_after:.1f} s after the task was sent (3 s hard limit, worker start included)")
    assert "Hard time limit (3" in log.read_text()
    assert state.error == "Stopped after 3 s, the media workers' time limit (MEDIA_TASK_TIME_LIMIT_S). The worker " \
        "was restarted. Run it again once the limit allows work this long."  # fmt: skip
    assert state.candidates_attempts == 1
    # Made due at once, as the worker's limits say (3 s + the 5-minute margin): the next sweep (every minute) tries it
    # again; before, only one past the limit plus 5 minutes. This process's task has the default's 60 minutes: its
    # sweep is run at the time that makes the same margin.
    worker_margin = timedelta(seconds=3 + 300)
    assert state.candidates_started_at <= timezone.now() - worker_margin
    broker.delete(TaskQueue.MEDIA.value)
    # The ended child was gone before the lock was released and the worker is stopped: nothing can end the try now
    # (a 2 s sleep here dated from before the test waited for the child's exit).
    handled = tag_tries_recover(now=timezone.now() + TAG_TRIES["candidates"].stalled_after() - worker_margin)
    assert handled["candidates"] == [video.pk]
    queued = [json.loads(raw) for raw in broker.lrange(TaskQueue.MEDIA.value, 0, -1)]
    broker.delete(TaskQueue.MEDIA.value)
    assert [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[:2]) for m in queued] == [
        (NAME, [[video.pk], {"attempt": 2}])
    ]
    assert "Trying again (2 of 3)." in _error(video.pk)
