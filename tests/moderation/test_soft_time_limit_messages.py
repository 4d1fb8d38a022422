"""The reproduction search (``find_candidates``) and the tag embedding (``embed_tags``) run on the media queue, under
its soft time limit (MEDIA_TASK_SOFT_TIME_LIMIT_S), like the media stages. Stopped there, they ended in a bare
SoftTimeLimitExceeded in a worker's log: the video was not listed on the ops page, the tags stayed unembedded (left
out of suggestions) with nothing on the vocabulary screen. Now each records which limit stopped it, where the user
looks: the ops page (with its Retry) and the vocabulary screen."""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.urls import reverse

from moderation.media.models import Video
from moderation.reproduction.models import ReproRetrievalFailure
from moderation.reproduction.tasks import find_candidates
from moderation.tagging.models import TAG_EMBEDDING_DIM, Tag
from moderation.tagging.services import tags_import
from moderation.tagging.tasks import embed_tags
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db

SOFT_LIMIT = (
    "Stopped after 55 minutes, the media workers' soft time limit (MEDIA_TASK_SOFT_TIME_LIMIT_S). "
    "Run it again once the limit allows work this long."
)


def _the_soft_limit(*args: Any, **kwargs: Any) -> Any:
    raise SoftTimeLimitExceeded()  # what Celery raises inside the task at the soft limit


def test_a_reproduction_search_stopped_by_the_soft_limit_is_listed_on_the_ops_page_with_why(
    monkeypatch: pytest.MonkeyPatch, settings: Any, client_as: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    video = VideoFactory(status=Video.Status.READY)
    monkeypatch.setattr("moderation.reproduction.services.frame_hashes_index", _the_soft_limit)

    result = find_candidates.apply(args=[video.pk])

    assert result.successful(), result.traceback
    failure = ReproRetrievalFailure.objects.get(video=video)
    assert failure.error == SOFT_LIMIT and failure.attempts == 1
    html = client_as("admin").get(reverse("moderation:ops_dashboard")).content.decode()
    assert 'id="ops-repro-failed"' in html and f"#{video.pk}" in html
    assert "the media workers&#x27; soft time limit (MEDIA_TASK_SOFT_TIME_LIMIT_S)" in html

    monkeypatch.undo()  # the operator's Retry: a search that finishes clears the record
    assert find_candidates.apply(args=[video.pk]).successful()
    assert not ReproRetrievalFailure.objects.filter(video=video).exists()


def test_tags_left_unembedded_by_the_soft_limit_say_why_on_the_vocabulary_screen(
    monkeypatch: pytest.MonkeyPatch, settings: Any, client_as: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tags_import(lines=["火锅", "旅游", "风景"])
    monkeypatch.setattr("moderation.tagging.encoder.encode", _the_soft_limit)

    result = embed_tags.apply()

    assert result.successful(), result.traceback
    assert set(Tag.objects.values_list("embedding_error", flat=True)) == {SOFT_LIMIT}
    html = client_as("admin").get(reverse("moderation:tag_vocabulary")).content.decode()
    assert 'id="vocabulary-embedding"' in html and "3 tags still without an embedding" in html
    assert "the media workers&#x27; soft time limit (MEDIA_TASK_SOFT_TIME_LIMIT_S)" in html

    monkeypatch.setattr("moderation.tagging.encoder.encode", lambda texts: [[0.1] * TAG_EMBEDDING_DIM for _ in texts])
    assert embed_tags.apply().successful()  # the next run embeds them and the notice goes
    assert set(Tag.objects.values_list("embedding_error", flat=True)) == {""}
    html = client_as("admin").get(reverse("moderation:tag_vocabulary")).content.decode()
    assert 'id="vocabulary-embedding"' not in html
