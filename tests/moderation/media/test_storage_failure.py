"""A video that fails because the server's own storage failed (a full disk, a failing write) is not "damaged":
damaged offers only Dismiss and tells the uploader to upload again, for a file nothing is wrong with. It stays a
failure of ours, offered Retry, whose message says the server had a storage problem."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from moderation.media import extractors, pipeline
from moderation.media.ingest import video_ingest
from moderation.media.models import Video

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _disk_full_folder(folder: Path) -> Path:
    """A folder where every keyframe ffmpeg writes lands on /dev/full: each write fails with ENOSPC, as on a full
    disk (a real failure of the kernel's, not a faked one)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(200):
        (folder / f"{i:06d}.jpg").symlink_to("/dev/full")
    return folder


def _page_of(video: Video, user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()


def test_ffmpeg_failing_to_write_on_a_full_disk_is_a_storage_problem_not_a_damaged_file(tmp_path, silent_clip):
    with pytest.raises(Exception) as failed:
        extractors.extract_keyframes(silent_clip, _disk_full_folder(tmp_path / "full"), fps=1.0, width=64, duration=3)
    assert not isinstance(failed.value, extractors.DamagedVideoError), failed.value
    assert str(failed.value).startswith("The server had a storage problem while processing this video")
    assert os.strerror(errno.ENOSPC) in str(failed.value) and str(tmp_path) not in str(failed.value)


def test_a_video_stopped_by_a_full_disk_stays_retryable_and_says_the_server_had_a_storage_problem(
    silent_clip, tmp_path, monkeypatch, make_user
):
    uploader = make_user("moderator")
    video = video_ingest(path=silent_clip, title="Fine file, full disk", created_by=uploader)
    mkdtemp = tempfile.mkdtemp

    def staging_on_a_full_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        folder = Path(mkdtemp(*args, **kwargs))
        # Only the keyframe stage's staging folder (".v<id>-…" under keyframes/) fills up.
        return str(_disk_full_folder(folder) if folder.name.startswith(f".v{video.pk}-") else folder)

    monkeypatch.setattr(pipeline.tempfile, "mkdtemp", staging_on_a_full_disk)
    pipeline.video_process(video_id=video.pk)
    video.refresh_from_db()

    assert video.status == Video.Status.FAILED
    assert video.error_kind == Video.ErrorKind.OTHER, video.error  # not DAMAGED: nothing is wrong with the file
    assert not video.error_for_sender  # a platform reads that the workbench failed, not "upload it again"
    assert "storage problem" in video.error and os.strerror(errno.ENOSPC) in video.error, video.error
    page = _page_of(video, uploader)
    assert 'id="video-retry"' in page and "This file is damaged" not in page

    monkeypatch.undo()  # storage fixed: Retry processes the same file
    pipeline.video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error


def test_an_os_error_of_ours_in_a_stage_says_the_server_had_a_storage_problem(silent_clip, monkeypatch, make_user):
    """Any read or write of ours failing with the operating system's error (here the keyframes' swap into place on
    a failing disk) reads as a storage problem, not "Processing failed unexpectedly: OSError …"."""
    uploader = make_user("moderator")
    video = video_ingest(path=silent_clip, title="Failing disk", created_by=uploader)

    def failing_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(pipeline.os, "replace", failing_disk)
    pipeline.video_process(video_id=video.pk)
    video.refresh_from_db()

    assert (video.status, video.error_kind) == (Video.Status.FAILED, Video.ErrorKind.OTHER)
    assert video.error.startswith("The server had a storage problem while processing this video"), video.error
    assert os.strerror(errno.EIO) in video.error
    assert 'id="video-retry"' in _page_of(video, uploader)
