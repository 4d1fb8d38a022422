"""Upload and processing with media in a real S3-compatible store (s3rver): nothing stays on the node's disk,
an unreachable store is a clear, retried state, and a missing object fails the video with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from moderation.errors import ModerationError
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process
from moderation.media.tasks import process_video
from tests.s3server import free_port, start_s3_server
from tests.s3server import point_media_storage_at as _point_at
from workbench import storage

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _objects(server: Any, bucket: str) -> dict[str, int]:
    listed = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["Size"] for o in listed}


def _files_on_node(settings: Any) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_upload_and_processing_keep_media_only_in_the_object_store(
    s3_media: Any, settings: Any, client_as: Any, silent_clip: Path
) -> None:
    moderator = client_as("moderator")
    upload = SimpleUploadedFile("deal.mp4", silent_clip.read_bytes(), content_type="video/mp4")
    assert moderator.post(reverse("moderation:video_upload"), {"title": "Deal", "file": upload}).status_code == 302
    video = Video.objects.get()
    bucket = settings.MEDIA_S3_BUCKET
    assert _objects(s3_media, bucket) == {video.file.name: silent_clip.stat().st_size}
    assert _files_on_node(settings) == [], "the upload's temporary file is gone"

    video = video_process(video_id=video.pk)
    assert video is not None and video.status == Video.Status.READY, video and video.error
    keyframes = list(video.keyframes.all())
    stored = _objects(s3_media, bucket)
    assert keyframes and all(kf.image.name in stored for kf in keyframes)
    assert video.keyframes.filter(selected=True).exists() and video.pdq_signature
    assert _files_on_node(settings) == [], "the worker's scratch copies are cleaned up"

    # Playback: the page links the role-checked view, which hands out a presigned URL.
    detail = moderator.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert f'src="/media/{keyframes[0].image.name}"' in detail
    redirect = moderator.get(f"/media/{keyframes[0].image.name}")
    import requests

    image = requests.get(redirect["Location"], timeout=10)
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"


def test_a_redone_keyframe_stage_replaces_its_objects(s3_media: Any, settings: Any, silent_clip: Path) -> None:
    from moderation.media import pipeline

    video = video_ingest(path=silent_clip, title="again")
    bucket = settings.MEDIA_S3_BUCKET

    def keyframe_stage() -> set[str]:
        from moderation.media.analyzers import FrameStore

        frames = FrameStore()
        with storage.scratch_dir("t") as scratch:
            token = pipeline._SCRATCH.set(scratch)
            try:
                source = storage.local_copy(video.file.name, scratch)
                pipeline._stage_probe(video, source, frames)
                video.refresh_from_db()
                pipeline._stage_keyframes(video, source, frames)
            finally:
                pipeline._SCRATCH.reset(token)
        return {k for k in _objects(s3_media, bucket) if k.startswith("keyframes/")}

    first = keyframe_stage()
    # A frame an earlier run left behind; the stage is then redone (a redelivered task).
    s3_media.client().put_object(Bucket=bucket, Key=f"keyframes/{video.pk}/999999.jpg", Body=b"x")
    again = keyframe_stage()
    assert again == first == {kf.image.name for kf in video.keyframes.all()}
    assert _files_on_node(settings) == []


def test_store_unreachable_during_upload_saves_nothing(s3_media: Any, settings: Any, silent_clip: Path) -> None:
    _point_at(settings, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModerationError, match="Media storage is unavailable"):
        video_ingest(path=silent_clip, title="lost")
    assert not Video.objects.exists()
    assert _files_on_node(settings) == []


def test_store_down_mid_task_is_a_clear_state_then_the_retry_finishes(
    s3_media: Any, settings: Any, silent_clip: Path, tmp_path: Path
) -> None:
    own = start_s3_server(directory=tmp_path / "s3data")  # a store this test can stop and restart
    try:
        own.create_bucket(settings.MEDIA_S3_BUCKET)
        _point_at(settings, own.endpoint)
        video = video_ingest(path=silent_clip, title="flaky store")
        own.stop(keep_data=True)

        with pytest.raises(storage.StorageUnavailable):
            video_process(video_id=video.pk)
        video.refresh_from_db()
        assert video.status == Video.Status.PROCESSING
        assert "Waiting for media storage" in video.error and "retried" in video.error
        assert not video.keyframes.exists(), "nothing half-written"
        assert _files_on_node(settings) == []

        own = start_s3_server(port=own.port, directory=own.directory)  # the store is back
        assert video_process(video_id=video.pk).status == Video.Status.READY  # type: ignore[union-attr]
        video.refresh_from_db()
        assert video.error == "" and video.keyframes.exists()
    finally:
        own.stop()


def test_a_task_that_never_reaches_the_store_ends_failed_with_the_reason(
    s3_media: Any, settings: Any, silent_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = video_ingest(path=silent_clip, title="never")
    _point_at(settings, f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr("moderation.media.tasks.STORAGE_RETRIES", 2)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    process_video.apply(args=[video.pk])  # eager: the retries run at once
    video.refresh_from_db()
    assert video.status == Video.Status.FAILED
    assert video.error.startswith("Media storage stayed unreachable")


def test_a_missing_object_fails_the_video_with_the_reason(s3_media: Any, settings: Any, silent_clip: Path) -> None:
    video = video_ingest(path=silent_clip, title="gone")
    s3_media.client().delete_object(Bucket=settings.MEDIA_S3_BUCKET, Key=video.file.name)
    result = video_process(video_id=video.pk)
    assert result is not None and result.status == Video.Status.FAILED
    assert "missing" in result.error and video.file.name in result.error


def test_inference_waits_for_an_unreachable_store_then_decides_on_retry(
    s3_media: Any, settings: Any, policy_version: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moderation.inference import services as inference_services
    from moderation.inference.tasks import run_inference
    from moderation.media.models import Keyframe
    from tests.factories import VideoFactory

    own = start_s3_server(directory=tmp_path / "s3data")  # a store this test can stop and restart
    try:
        own.create_bucket(settings.MEDIA_S3_BUCKET)
        _point_at(settings, own.endpoint)
        video = VideoFactory(file="videos/v.mp4", stage=Video.Stage.INFERENCE)
        frame = tmp_path / "k.jpg"
        from PIL import Image

        Image.new("RGB", (32, 18), (10, 20, 30)).save(frame, "JPEG")
        name = storage.store_file(frame, f"keyframes/{video.pk}/000000.jpg")
        Keyframe.objects.create(video=video, index=0, timestamp=0.0, image=name, selected=True, width=32, height=18)
        own.stop(keep_data=True)  # the inference worker's node cannot reach the store

        waiting: list[tuple[str, str]] = []
        record_wait = inference_services.decision_wait_for_storage

        def wait_then_store_is_back(**kwargs: Any) -> None:
            nonlocal own
            record_wait(**kwargs)
            row = Video.objects.get(pk=video.pk)
            waiting.append((row.status, row.error))
            own = start_s3_server(port=own.port, directory=own.directory)

        monkeypatch.setattr(inference_services, "decision_wait_for_storage", wait_then_store_is_back)
        settings.CELERY_TASK_ALWAYS_EAGER = True
        run_inference.apply(args=[video.pk])  # eager: the retry runs at once
        [(status, error)] = waiting
        assert status == Video.Status.READY and error.startswith("Waiting for media storage")
        assert "Inference will be retried" in error
        video.refresh_from_db()
        assert video.decisions.count() == 1 and video.stage == Video.Stage.DONE and video.error == ""
    finally:
        own.stop()
