"""A media worker killed with SIGKILL mid-task: the task is redelivered and finishes without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from moderation.media.ingest import video_ingest
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from tests.workers import solo_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

VISIBILITY_TIMEOUT_S = 3


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    return solo_worker("media", log, CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S))


def test_a_task_killed_during_asr_is_redelivered_and_finishes_once(speech_clip: Path, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    video = video_ingest(path=speech_clip, title="kill me")  # queued on commit (autocommit here)
    first = _start_worker(log)
    try:
        wait_for(lambda: Video.objects.get(pk=video.pk).stage == Video.Stage.ASR, 120, "the ASR stage", log)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    killed = Video.objects.get(pk=video.pk)
    assert killed.status == Video.Status.PROCESSING and killed.stage == Video.Stage.ASR  # died mid-task
    keyframes_before = set(Keyframe.objects.filter(video=video).values_list("pk", flat=True))

    second = _start_worker(log)
    try:
        wait_for(lambda: Video.objects.get(pk=video.pk).status != Video.Status.PROCESSING, 180, "redelivery", log)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            second.kill()

    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    keyframes = Keyframe.objects.filter(video=video)
    # The keyframe stage had finished before the kill: its rows stand, nothing was added.
    assert set(keyframes.values_list("pk", flat=True)) == keyframes_before
    assert keyframes.count() == len({k.index for k in keyframes})
    segments = list(TranscriptSegment.objects.filter(video=video).values_list("index", flat=True))
    assert segments and sorted(segments) == list(range(len(segments)))
    hashes = list(keyframes.values_list("pdq_hash", flat=True))
    assert all(len(h) == 64 for h in hashes) and len(video.pdq_signature) <= len(hashes)
    patches = Patch.objects.filter(keyframe__video=video)
    assert patches.count() == len(set(patches.values_list("keyframe_id", "rank")))
    assert OcrBox.objects.filter(keyframe__video=video).count() == len(
        set(OcrBox.objects.filter(keyframe__video=video).values_list("keyframe_id", "index"))
    )
