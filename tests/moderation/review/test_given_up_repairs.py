"""The ops page lists each video whose missing decisions failed and lets an admin retry or dismiss that one.

Before, the routing panel's Retry queued every given-up video at once, and a video whose missing policy's model
could never read it was counted as half-decided for good. Now each failed try is a row (video, the policy it
lacks, the error, tries, when) with its own Retry and, once given up, Dismiss: recorded with who and when, no
longer counted nor queued by the repair, listed under the "dismissed" filter. Every outcome is a message in the
panel (htmx) or on the page, never an error page: a video deleted meanwhile, a double click, a non-admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from moderation.inference.models import MissingDecisionRepair
from moderation.inference.selectors import missing_decision_counts, videos_missing_decision_to_queue
from moderation.inference.services import decisions_create_for_video, missing_decision_failure_record
from moderation.media.models import Video
from moderation.review.models import AuditEvent
from moderation.review.services import review_routing_repair
from tests.factories import VideoFactory
from tests.moderation.review.routing import client_for, decided_before_minors, queued_missing_decisions, staff

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@dataclass
class GivenUp:
    videos: list[Video]  # decided under kuaimod only; the minors model failed three times on each
    admin: User
    client: Client


@pytest.fixture
def given_up(policy_version: Any) -> GivenUp:
    videos = [VideoFactory(title=f"half decided {i}") for i in range(2)]
    decided_before_minors(videos)
    for video in videos:
        for _ in range(MissingDecisionRepair.MAX_ATTEMPTS):
            missing_decision_failure_record(video_id=video.pk, error=f"CUDA out of memory on video {video.pk}")
    admin = staff("admin")
    return GivenUp(videos=videos, admin=admin, client=client_for(admin))


def _retry(client: Client, video_id: int, **extra: Any) -> Any:
    return client.post(reverse("moderation:ops_missing_decision_retry", args=[video_id]), **extra)


def _dismiss(client: Client, video_id: int, **extra: Any) -> Any:
    return client.post(reverse("moderation:ops_missing_decision_dismiss", args=[video_id]), **extra)


def test_each_given_up_video_is_listed_and_retried_alone(
    given_up: GivenUp, django_capture_on_commit_callbacks: Any
) -> None:
    w = given_up
    first, second = w.videos
    html = w.client.get(reverse("moderation:ops_dashboard")).content.decode()
    row = html[html.index(f'id="ops-failed-{first.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'href="{reverse("moderation:video_detail", args=[first.pk])}">#{first.pk}</a> half decided 0' in row
    assert "<td>Minors</td>" in row and f"CUDA out of memory on video {first.pk}" in row and "3 (given up)" in row
    assert f'aria-label="Retry video #{first.pk}"' in row and f'aria-label="Dismiss video #{first.pk}"' in row

    with django_capture_on_commit_callbacks() as queued:
        panel = _retry(w.client, first.pk, **HTMX)
    assert panel.status_code == 200 and queued_missing_decisions(queued) == [
        first.pk
    ]  # that one only, not every given-up one
    text = panel.content.decode()
    assert text.lstrip().startswith('<section class="panel" id="ops-routing">')  # the panel alone
    assert f"Queued the missing decisions of video #{first.pk} once more" in text
    assert f'id="ops-failed-{first.pk}"' not in text and f'id="ops-failed-{second.pk}"' in text
    assert missing_decision_counts(now=_now())["given_up"] == 1

    # A double click: the second finds it queued, says so, and queues nothing.
    with django_capture_on_commit_callbacks() as queued:
        again = _retry(w.client, first.pk, **HTMX)
    assert again.status_code == 200 and queued_missing_decisions(queued) == []
    assert f"Video #{first.pk} is queued already" in again.content.decode()

    # Without htmx: the same, as a message on the page.
    with django_capture_on_commit_callbacks() as queued:
        page = _retry(w.client, second.pk, follow=True)
    assert queued_missing_decisions(queued) == [second.pk]
    assert f"Queued the missing decisions of video #{second.pk} once more" in page.content.decode()


def test_a_dismissed_video_is_recorded_no_longer_counted_nor_queued_and_listed_apart(
    given_up: GivenUp, django_capture_on_commit_callbacks: Any
) -> None:
    w = given_up
    first, second = w.videos
    panel = _dismiss(w.client, first.pk, **HTMX).content.decode()
    assert f"Dismissed video #{first.pk}" in panel
    repair = MissingDecisionRepair.objects.get(video=first)
    assert repair.dismissed_by == w.admin and repair.dismissed_at is not None
    [event] = AuditEvent.objects.filter(action="missing_decisions.dismissed")
    assert (event.actor, event.object_type, event.object_id) == (w.admin, "video", str(first.pk))
    assert missing_decision_counts(now=_now()) | {"to_queue": 0} == {
        "queued": 0,
        "given_up": 1,
        "dismissed": 1,
        "to_queue": 0,
    }
    html = w.client.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "1</strong> decided video lacks a decision" in html and "1 more dismissed by an operator" in html
    assert f'id="ops-failed-{first.pk}"' not in html and f'id="ops-failed-{second.pk}"' in html

    # The repair leaves it alone, even once it is no longer given up by the rule of tries.
    MissingDecisionRepair.objects.filter(video=first).update(attempts=1)
    assert first.pk not in videos_missing_decision_to_queue(now=_now()).values_list("pk", flat=True)
    with django_capture_on_commit_callbacks() as queued:
        review_routing_repair()
    assert first.pk not in queued_missing_decisions(queued)

    listed = w.client.get(reverse("moderation:ops_missing_decisions") + "?failed=dismissed", **HTMX).content.decode()
    assert f'id="ops-failed-{first.pk}"' in listed and f'id="ops-failed-{second.pk}"' not in listed
    assert f"by {w.admin.username}" in listed and '<strong aria-current="page">dismissed (1)</strong>' in listed

    again = _dismiss(w.client, first.pk, **HTMX)
    assert again.status_code == 200
    assert f"Video #{first.pk} was dismissed already, by {w.admin.username}" in again.content.decode()

    # Retry from the dismissed list queues it again and undoes the dismissal.
    with django_capture_on_commit_callbacks() as queued:
        retried = _retry(w.client, first.pk, data={"failed": "dismissed"}, **HTMX).content.decode()
    assert queued_missing_decisions(queued) == [first.pk] and "No dismissed video." in retried
    assert MissingDecisionRepair.objects.get(video=first).dismissed_at is None
    assert AuditEvent.objects.filter(action="missing_decisions.retried", object_id=str(first.pk)).count() == 1


def test_refused_actions_say_why_and_never_fail(given_up: GivenUp, policy_version: Any) -> None:
    w = given_up
    first, second = w.videos
    Video.objects.filter(pk=first.pk).delete()  # deleted while the page was open
    for action in (_retry, _dismiss):
        response = action(w.client, first.pk, **HTMX)
        assert response.status_code == 200
        assert f"Video #{first.pk} no longer exists" in response.content.decode()
    page = _dismiss(w.client, first.pk, follow=True).content.decode()
    assert f"Video #{first.pk} no longer exists" in page

    # Not given up yet: no Dismiss (the repair still tries it); a video that lacks nothing: nothing to do.
    MissingDecisionRepair.objects.filter(video=second).update(attempts=1)
    assert "is not given up" in _dismiss(w.client, second.pk, **HTMX).content.decode()
    never = VideoFactory(title="decided under both")
    decisions_create_for_video(video_id=never.pk)
    assert f"Video #{never.pk} lacks no decision now" in _retry(w.client, never.pk, **HTMX).content.decode()

    moderator = client_for(staff("moderator"))
    assert not AuditEvent.objects.filter(action__startswith="missing_decisions.").exists()  # refused: no event
    assert _retry(moderator, second.pk, **HTMX).status_code == 403
    assert _dismiss(moderator, second.pk).status_code == 403
    assert not MissingDecisionRepair.objects.filter(video=second, dismissed_at__isnull=False).exists()
    assert w.client.get(reverse("moderation:ops_missing_decision_retry", args=[second.pk])).status_code == 303


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()
