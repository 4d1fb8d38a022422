"""A media worker killed with SIGKILL mid-task: the task is redelivered and finishes without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from moderation.media.ingest import video_ingest
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
VISIBILITY_TIMEOUT_S = 3


def _database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or "localhost"
    if host.startswith("/"):  # a Unix socket folder: libpq takes it as the host query parameter
        return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@/{db['NAME']}?host={host}&port={db.get('PORT') or 5432}"
    return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings_test",
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
    }
    cmd = [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", "media", "--pool", "solo",
           "--concurrency", "1", "--without-mingle", "--without-gossip", "-l", "INFO"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def test_a_task_killed_during_asr_is_redelivered_and_finishes_once(speech_clip: Path, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    video = video_ingest(path=speech_clip, title="kill me")  # queued on commit (autocommit here)
    first = _start_worker(log)
    try:
        _wait(lambda: Video.objects.get(pk=video.pk).stage == Video.Stage.ASR, 120, "the ASR stage", log)
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
        _wait(lambda: Video.objects.get(pk=video.pk).status != Video.Status.PROCESSING, 180, "redelivery", log)
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
