"""Two feedback batches about one video at once (a platform sending from parallel workers): the video's aggregate
counts both, not whichever batch wrote last."""

from __future__ import annotations

import itertools

import pytest

from moderation.feedback.models import FeedbackAggregate
from moderation.feedback.services import feedback_events_ingest
from moderation.integrations.services import integration_create
from tests.factories import VideoFactory
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)
_ids = itertools.count()


def _reports(video, n: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [
        {"event_id": f"race-{next(_ids)}", "type": "report", "video_id": video.pk, "timestamp": "2026-05-01T12:00:00Z"}
        for _ in range(n)
    ]


def test_two_batches_about_one_video_at_once_are_both_counted():
    """Before: the second batch counted the events it could see (its own 3, not the first's uncommitted 2), waited
    on the aggregate's row, and wrote 3 over the first's 2: the video showed 3 reports of 5 until its next event."""
    integration = integration_create(name="platform")[0]
    video = VideoFactory()
    first, second = _reports(video, 2), _reports(video, 3)

    raced = race(
        lambda: feedback_events_ingest(integration=integration, events=first),
        lambda: feedback_events_ingest(integration=integration, events=second),
    )

    assert raced.second_waited
    assert raced.first.accepted == 2 and raced.second.accepted == 3
    assert FeedbackAggregate.objects.get(video=video).reports == 5
