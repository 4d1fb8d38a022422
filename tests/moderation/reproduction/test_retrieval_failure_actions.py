"""The ops page's videos without reproduction candidates can be acted on: Retry queues the search again on the media
queue (once, however often it is clicked while on its way), Dismiss takes one off the list with who and when. Before,
the page listed them and offered nothing: an operator could only read the error. Every outcome is a message in the
list (htmx) or on the page, never an error page."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from moderation.media.models import Video
from moderation.reproduction.models import ReproRetrievalFailure
from moderation.reproduction.services import repro_retrieval_failure_record
from moderation.reproduction.tasks import find_candidates
from moderation.review.models import AuditEvent
from tests.factories import VideoFactory
from workbench.queues import TaskQueue

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TASK = "moderation.reproduction.tasks.find_candidates"


def _failure(title: str) -> ReproRetrievalFailure:
    video = VideoFactory(title=title, status=Video.Status.READY)
    failure = repro_retrieval_failure_record(
        video_id=video.pk, error="Media storage stayed unreachable: connection refused", attempts=6
    )
    assert failure is not None
    return failure


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _queued(callbacks: Any) -> list[int]:
    """The videos whose candidate search was queued after the commit, each on the media queue (TASK_ROUTES)."""
    sent = [c.args for c in callbacks if getattr(c, "args", ()) and c.args[0] == TASK]
    assert all(args[1] == TaskQueue.MEDIA for args in sent)
    return [args[2][0] for args in sent]


def _admin(make_user: Any) -> tuple[User, Client]:
    admin = make_user("admin")
    client = Client()
    client.force_login(admin)
    return admin, client


def _retry(client: Client, video_id: int, **extra: Any) -> Any:
    return client.post(reverse("moderation:ops_repro_failed_retry", args=[video_id]), **extra)


def _dismiss(client: Client, video_id: int, **extra: Any) -> Any:
    return client.post(reverse("moderation:ops_repro_failed_dismiss", args=[video_id]), **extra)


def test_retry_queues_the_search_once_records_it_and_a_new_failure_is_listed_again(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin, client = _admin(make_user)
    first, second = _failure("never compared"), _failure("also never compared")
    page = _text(client.get(reverse("moderation:ops_dashboard")))
    assert f'aria-label="Retry the search of video #{first.video_id}"' in page
    assert f'aria-label="Dismiss video #{first.video_id}"' in page
    assert f">#{first.video_id}</a> “never compared” at " in page  # which video, by its title too

    with django_capture_on_commit_callbacks() as queued:
        panel = _retry(client, first.video_id, **HTMX)
    assert panel.status_code == 200 and _queued(queued) == [first.video_id]  # that one, on the media queue's task
    text = _text(panel)
    assert text.lstrip().startswith('<div id="ops-repro-failed">')  # the list alone, swapped in place
    assert f"Queued the search for video #{first.video_id}'s reproduction candidates" in text
    row = text[text.index(f'id="ops-repro-failed-{first.video_id}"') :]
    row = row[: row.index("</li>")]
    assert "retry queued at" in row and "Retry</button>" not in row  # no second click offered
    assert f'aria-label="Retry the search of video #{second.video_id}"' in text  # the other one still has it
    first.refresh_from_db()
    assert first.queued_at is not None and first.is_queued(now=timezone.now())
    [event] = AuditEvent.objects.filter(action="repro_retrieval.retry")
    assert (event.actor, event.object_type, event.object_id) == (admin, "video", str(first.video_id))

    # A double click (or a second tab): said, and nothing queued twice.
    with django_capture_on_commit_callbacks() as queued:
        again = _retry(client, first.video_id, **HTMX)
    assert again.status_code == 200 and _queued(queued) == []
    assert f"video #{first.video_id}'s reproduction candidates is queued already" in _text(again)
    assert AuditEvent.objects.filter(action="repro_retrieval.retry").count() == 1

    # The retried search fails again: its new error is listed with Retry offered again.
    repro_retrieval_failure_record(video_id=first.video_id, error="Media storage stayed unreachable: again", attempts=6)
    page = _text(client.get(reverse("moderation:ops_dashboard")))
    row = page[page.index(f'id="ops-repro-failed-{first.video_id}"') :]
    row = row[: row.index("</li>")]
    assert "unreachable: again" in row and "Retry</button>" in row

    # A retry never answered (a lost message) may be sent again once it is taken for lost.
    ReproRetrievalFailure.objects.filter(pk=first.pk).update(
        queued_at=timezone.now() - ReproRetrievalFailure.QUEUED_FOR - timedelta(minutes=1),
        failed_at=timezone.now() - ReproRetrievalFailure.QUEUED_FOR - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks() as queued:
        page = _text(_retry(client, first.video_id, follow=True))  # without htmx: a message on the page
    assert _queued(queued) == [first.video_id] and "Queued the search for video" in page


def test_a_retry_that_cannot_search_says_why_instead_of_staying_queued(make_user: Any, settings: Any) -> None:
    _, client = _admin(make_user)
    failure = _failure("reprocessing")
    _retry(client, failure.video_id)
    Video.objects.filter(pk=failure.video_id).update(status=Video.Status.FAILED)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert find_candidates.apply(args=[failure.video_id]).successful()
    failure.refresh_from_db()
    assert "is not processed yet" in failure.error and not failure.is_queued(now=timezone.now())
    # A video never listed is not listed for it: only an operator's retry records the refusal.
    other = VideoFactory(status=Video.Status.UPLOADED)
    assert find_candidates.apply(args=[other.pk]).successful()
    assert not ReproRetrievalFailure.objects.filter(video=other).exists()


def test_dismiss_is_recorded_takes_the_video_off_the_list_and_a_later_failure_lists_it_again(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin, client = _admin(make_user)
    first, second = _failure("accepted as is"), _failure("still to handle")

    text = _text(_dismiss(client, first.video_id, **HTMX))
    assert f"Dismissed video #{first.video_id}" in text
    assert f'id="ops-repro-failed-{first.video_id}"' not in text and f'id="ops-repro-failed-{second.video_id}"' in text
    first.refresh_from_db()
    assert first.dismissed_by == admin and first.dismissed_at is not None
    [event] = AuditEvent.objects.filter(action="repro_retrieval.dismiss")
    assert (event.actor, event.object_id) == (admin, str(first.video_id))
    page = _text(client.get(reverse("moderation:ops_dashboard")))
    assert "<strong>1</strong> video without reproduction candidates" in page
    assert "1 more without reproduction candidates dismissed by an operator" in page
    assert f'id="ops-repro-failed-{first.video_id}"' not in page

    again = _text(_dismiss(client, first.video_id, **HTMX))
    assert f"Video #{first.video_id} was dismissed already, by {admin.username}" in again
    assert AuditEvent.objects.filter(action="repro_retrieval.dismiss").count() == 1

    # A retry on its way is not dismissed under it.
    with django_capture_on_commit_callbacks():
        _retry(client, second.video_id, **HTMX)
    assert "wait for its outcome before dismissing" in _text(_dismiss(client, second.video_id, **HTMX))

    # The dismissed video's search fails again later (it was processed again): listed again.
    repro_retrieval_failure_record(video_id=first.video_id, error="Media storage stayed unreachable", attempts=6)
    page = _text(client.get(reverse("moderation:ops_dashboard")))
    assert f'id="ops-repro-failed-{first.video_id}"' in page


def test_refused_actions_say_why_and_never_fail(make_user: Any, client_as: Any) -> None:
    _, client = _admin(make_user)
    failure = _failure("found meanwhile")
    ReproRetrievalFailure.objects.filter(pk=failure.pk).delete()  # a search found the candidates meanwhile
    for action in (_retry, _dismiss):
        response = action(client, failure.video_id, **HTMX)
        assert response.status_code == 200
        assert f"Video #{failure.video_id} is not listed without reproduction candidates" in _text(response)
    page = _text(_retry(client, failure.video_id, follow=True))
    assert "is not listed without reproduction candidates" in page

    listed = _failure("not for moderators")
    moderator = client_as("moderator")
    assert _retry(moderator, listed.video_id, **HTMX).status_code == 403
    assert _dismiss(moderator, listed.video_id).status_code == 403
    assert client.get(reverse("moderation:ops_repro_failed_retry", args=[listed.video_id])).status_code == 303
    assert not AuditEvent.objects.filter(action__startswith="repro_retrieval.").exists()
