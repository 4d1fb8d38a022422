"""The reproduction candidates of a ready video are retried while media storage (the student model in it) does
not answer, and given up with a recorded reason the ops page lists, not lost silently."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from moderation.media.models import Video
from moderation.reproduction.models import ReproRetrievalFailure
from moderation.reproduction.tasks import find_candidates
from tests.factories import VideoFactory
from tests.s3server import free_port, point_media_storage_at

pytestmark = pytest.mark.django_db


def test_candidates_retry_on_unreachable_storage_then_are_recorded_and_shown(
    s3_media: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, client_as: Any
) -> None:
    video = VideoFactory(status=Video.Status.READY)
    reachable = settings.MEDIA_S3_ENDPOINT_URL
    point_media_storage_at(settings, f"http://127.0.0.1:{free_port()}")  # nothing answers there
    monkeypatch.setattr("moderation.reproduction.tasks.STORAGE_RETRIES", 2)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = find_candidates.apply(args=[video.pk])  # eager: the retries run at once

    assert result.successful(), result.traceback
    failure = ReproRetrievalFailure.objects.get(video=video)
    assert (
        failure.error.startswith("Media storage stayed unreachable") and failure.attempts == 3
    )  # the first try and two retries

    html = client_as("admin").get(reverse("moderation:ops_dashboard")).content.decode()
    assert 'id="ops-repro-failed"' in html and "without reproduction candidates" in html
    assert f"#{video.pk}" in html and "Media storage stayed unreachable" in html

    point_media_storage_at(settings, reachable)  # the store is back: a rerun computes them and clears the record
    assert find_candidates.apply(args=[video.pk]).successful()
    assert not ReproRetrievalFailure.objects.filter(video=video).exists()
