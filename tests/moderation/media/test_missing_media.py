"""Stored media found missing when a screen shows a video: said in its place, recorded on the video and in
the audit log once per change, counted in /metrics, cleared when the file is back; an unreachable store
is said on the screen and records nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from moderation.media.models import Keyframe, Video
from moderation.media.services import video_media_verify
from moderation.review.models import AuditEvent
from moderation.review.services import review_claim_next
from tests.factories import ReviewTaskFactory, VideoFactory
from tests.s3server import free_port
from workbench import storage

pytestmark = pytest.mark.django_db


def _with_keyframes(video: Video, n: int) -> list[Keyframe]:
    frames = []
    for i in range(n):
        name = default_storage.save(f"keyframes/{video.pk}/{i:06d}.jpg", _bytes(b"\xff\xd8jpeg"))
        frames.append(Keyframe.objects.create(video=video, index=i, timestamp=i, image=name))
    return frames


def _bytes(data: bytes) -> Any:
    from django.core.files.base import ContentFile

    return ContentFile(data)


def _events(video: Video) -> list[tuple[str, str]]:
    rows = AuditEvent.objects.filter(object_type="video", object_id=str(video.pk)).order_by("pk")
    return [(e.action, e.actor_name) for e in rows]


def test_a_deleted_keyframe_file_is_said_recorded_once_counted_and_cleared_when_back(
    make_user: Any, policy_version: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    task = ReviewTaskFactory(decision__policy_version=policy_version)
    video = task.decision.video
    frames = _with_keyframes(video, 4)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator) == task
    from django.test import Client

    client = Client()
    client.force_login(moderator)
    url = reverse("moderation:review_task", args=[task.pk])

    html = client.get(url).content.decode()
    assert 'id="media-missing"' not in html and "<video" in html
    assert _events(video) == []

    gone = Path(settings.MEDIA_ROOT) / frames[2].image.name
    kept = gone.read_bytes()
    gone.unlink()
    for _ in range(2):  # the second view records nothing new
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "Missing from media storage: 1 of 4 keyframe images" in html
        assert html.count('data-missing="keyframe"') == 1 and "<video" in html
    video.refresh_from_db()
    assert video.missing_media == [frames[2].image.name]
    assert _events(video) == [("media.missing", moderator.username)]

    from workbench.metrics import metrics_text

    assert b"workbench_videos_missing_media 1.0" in metrics_text()[0]

    gone.write_bytes(kept)  # restored from a backup
    html = client.get(url).content.decode()
    assert 'id="media-missing"' not in html and 'data-missing="keyframe"' not in html
    video.refresh_from_db()
    assert video.missing_media == []
    assert _events(video) == [("media.missing", moderator.username), ("media.restored", moderator.username)]
    assert b"workbench_videos_missing_media 0.0" in metrics_text()[0]


def test_a_video_still_processing_is_not_checked(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    video = VideoFactory(file="videos/not-yet.mp4", status=Video.Status.PROCESSING)
    assert video_media_verify(video=video).missing == frozenset()
    video.status = Video.Status.READY
    assert video_media_verify(video=video).missing == {"videos/not-yet.mp4"}


@pytest.mark.integration
def test_object_store_listing_and_heads_find_what_is_gone(s3_media: Any, settings: Any, tmp_path: Path) -> None:
    source = tmp_path / "x.jpg"
    source.write_bytes(b"\xff\xd8x")
    for name in ("keyframes/1/a.jpg", "keyframes/1/b.jpg", "keyframes/1/c.jpg", "keyframes/10/a.jpg", "covers/c.jpg"):
        storage.store_file(source, name)
    asked = ["keyframes/1/a.jpg", "keyframes/1/b.jpg", "keyframes/1/d.jpg", "covers/c.jpg", "videos/v.mp4", ""]
    assert storage.missing_names(asked) == {"keyframes/1/d.jpg", "videos/v.mp4"}
    # A folder is a folder: keyframes/1 does not reach into keyframes/10.
    assert storage.list_names("keyframes/1") == ["keyframes/1/a.jpg", "keyframes/1/b.jpg", "keyframes/1/c.jpg"]


@pytest.mark.integration
def test_an_unreachable_store_is_said_on_the_screen_and_records_nothing(
    s3_media: Any, settings: Any, client_as: Any
) -> None:
    client = client_as("moderator")
    video = VideoFactory(file="videos/v.mp4", created_by_id=client.session["_auth_user_id"])  # its uploader's
    settings.MEDIA_S3_CONNECT_TIMEOUT = 0.5
    settings.MEDIA_S3_MAX_ATTEMPTS = 1
    default = settings.STORAGES["default"]
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": endpoint}},
    }
    response = client.get(reverse("moderation:video_detail", args=[video.pk]))
    assert response.status_code == 200
    assert "Media storage is not answering" in response.content.decode()
    video.refresh_from_db()
    assert video.missing_media == [] and _events(video) == []


@pytest.mark.integration
def test_a_complete_object_store_check_is_trusted_for_its_window_and_a_missing_one_never(
    s3_media: Any, settings: Any, tmp_path: Path
) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.MEDIA_CHECK_CACHE_S = 30
    source = tmp_path / "x.jpg"
    source.write_bytes(b"\xff\xd8x")
    video = VideoFactory(file=storage.store_file(source, "videos/trust.mp4"))
    frames = [
        Keyframe.objects.create(
            video=video, index=i, timestamp=i, image=storage.store_file(source, f"keyframes/{video.pk}/{i}.jpg")
        )
        for i in range(3)
    ]
    assert video_media_verify(video=video, keyframes=frames).missing == frozenset()
    s3_media.client().delete_object(Bucket=settings.MEDIA_S3_BUCKET, Key=frames[0].image.name)
    # Within the window the complete check stands (no request to the store) ...
    assert video_media_verify(video=video, keyframes=frames).missing == frozenset()
    # ... a different set of files is a different check ...
    assert video_media_verify(video=video, keyframes=frames[:2]).missing == {frames[0].image.name}
    video.refresh_from_db()
    # ... and a video known to miss files is asked every time: the notice goes as soon as the file is back.
    assert video_media_verify(video=video, keyframes=frames).missing == {frames[0].image.name}
    storage.store_file(source, frames[0].image.name)
    assert video_media_verify(video=video, keyframes=frames).missing == frozenset()
    assert Video.objects.get(pk=video.pk).missing_media == []

    settings.MEDIA_CHECK_CACHE_S = 0
    s3_media.client().delete_object(Bucket=settings.MEDIA_S3_BUCKET, Key=frames[1].image.name)
    assert video_media_verify(video=video, keyframes=frames).missing == {frames[1].image.name}
