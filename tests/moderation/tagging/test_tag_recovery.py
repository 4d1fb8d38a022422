"""A tag task whose worker was lost (killed at its hard time limit, out of memory, restarted) is recorded and tried
again by the beat within minutes of its limit, up to TAG_TRY_MAX_ATTEMPTS tries in a row; then the video's tags
panel says the tags were given up and why. Before, nothing recorded a try: a killed candidates or VLM task left the
panel at "No tag candidates yet" until the broker redelivered the message 6 hours later (CELERY_VISIBILITY_TIMEOUT),
or for ever where Celery acknowledged the killed task.

The kill is the row a try leaves when its worker dies: taken (``tag_try_take``, as the task does) and no more. The
beat's messages go through the real Redis broker."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.tagging.models import VideoTagState
from moderation.tagging.services import TAG_TRIES, tag_try_take
from moderation.tagging.tasks import generate_tag_candidates, recover_tag_tries, suggest_vlm_tags
from tests.broker import broker_client
from tests.factories import DecidedVideoFactory
from workbench.celery import app
from workbench.queues import INFER_ITEM_TIME_LIMIT_S, TASK_ROUTES, TaskQueue
from workbench.worker_limits import _RECORDERS, time_limit_text

pytestmark = pytest.mark.django_db


def _beat(django_capture_on_commit_callbacks, queue: TaskQueue) -> list[tuple[str, list[Any], dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Run the beat task; (task, args, kwargs) of each message it put on ``queue``, read back from Redis."""
    broker = broker_client()
    broker.delete(queue.value)
    with django_capture_on_commit_callbacks(execute=True):
        recover_tag_tries()
    out = []
    for raw in broker.lrange(queue.value, 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args, kwargs))
    broker.delete(queue.value)
    return out


def _age(video_id: int, kind: str) -> None:
    """The try has run past its limit plus the margin."""
    spec = TAG_TRIES[kind]
    VideoTagState.objects.filter(video_id=video_id).update(
        **{spec.started: timezone.now() - spec.stalled_after() - timedelta(seconds=1)}
    )


def _panel(client_as, video) -> str:  # type: ignore[no-untyped-def]
    return client_as("admin").get(reverse("moderation:tag_panel", args=[video.pk])).content.decode()


def test_the_sweep_runs_on_beat_and_the_vlm_task_has_the_item_limits():
    assert TASK_ROUTES["moderation.tagging.tasks.recover_tag_tries"] == TaskQueue.DEFAULT
    entries = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert entries["moderation.tagging.tasks.recover_tag_tries"] <= 60
    assert app.tasks["moderation.tagging.tasks.suggest_vlm_tags"].time_limit == INFER_ITEM_TIME_LIMIT_S
    assert TAG_TRIES["vlm"].stalled_after() == timedelta(seconds=INFER_ITEM_TIME_LIMIT_S + 300)


def test_a_lost_candidates_try_is_queued_again_once_and_its_message_works_once(
    django_capture_on_commit_callbacks, caplog
):  # type: ignore[no-untyped-def]
    video = DecidedVideoFactory()
    assert tag_try_take(video_id=video.pk, kind="candidates")  # the worker took it, then died
    assert _beat(django_capture_on_commit_callbacks, TaskQueue.MEDIA) == []  # within its limit: left alone

    _age(video.pk, "candidates")
    queued = _beat(django_capture_on_commit_callbacks, TaskQueue.MEDIA)
    assert queued == [("moderation.tagging.tasks.generate_tag_candidates", [video.pk], {"attempt": 2})]
    assert _beat(django_capture_on_commit_callbacks, TaskQueue.MEDIA) == []  # queued once
    state = VideoTagState.objects.get(video=video)
    assert state.candidates_started_at is None and state.candidates_attempts == 1
    assert "Making this video's tag candidates left no result: nothing was heard from its media worker" in state.error
    assert state.error.endswith("Trying again (2 of 3).")

    generate_tag_candidates(video.pk, attempt=2)  # the sweep's message: the try is made and ends
    state.refresh_from_db()
    assert state.candidates_started_at is None and state.candidates_attempts == 0
    with caplog.at_level(logging.INFO, logger="moderation.tagging.tasks"):
        generate_tag_candidates(video.pk, attempt=2)  # the same message again
    assert "try 2 taken or given up already" in caplog.text
    state.refresh_from_db()
    assert state.candidates_attempts == 0


def test_after_the_last_lost_try_the_tags_are_given_up_and_the_panel_says_why(
    django_capture_on_commit_callbacks, client_as, caplog
):  # type: ignore[no-untyped-def]
    video = DecidedVideoFactory()
    assert tag_try_take(video_id=video.pk, kind="candidates")
    for attempt in (2, 3):
        _age(video.pk, "candidates")
        assert _beat(django_capture_on_commit_callbacks, TaskQueue.MEDIA) == [
            ("moderation.tagging.tasks.generate_tag_candidates", [video.pk], {"attempt": attempt})
        ]
        assert tag_try_take(video_id=video.pk, kind="candidates", attempt=attempt)  # taken, and lost again
    _age(video.pk, "candidates")
    assert _beat(django_capture_on_commit_callbacks, TaskQueue.MEDIA) == []  # no fourth try
    state = VideoTagState.objects.get(video=video)
    assert state.candidates_started_at is None and state.candidates_attempts == 3
    assert "Given up after 3 tries that each stopped this way" in state.error
    assert state.error.endswith("Try again queues it once more.")  # the panel's button, not only "ask an administrator"
    with caplog.at_level(logging.INFO, logger="moderation.tagging.tasks"):
        generate_tag_candidates(video.pk)  # the first message, redelivered by the broker hours later
    assert "taken or given up already" in caplog.text
    assert "Tag candidates failed: Making this video&#x27;s tag candidates left no result" in _panel(client_as, video)


def test_a_vlm_try_ended_at_its_hard_limit_says_so_and_is_tried_again_at_the_next_sweep(
    django_capture_on_commit_callbacks, client_as
):  # type: ignore[no-untyped-def]
    video = DecidedVideoFactory()
    assert tag_try_take(video_id=video.pk, kind="vlm")
    name = "moderation.tagging.tasks.suggest_vlm_tags"
    message = time_limit_text(task_name=name, seconds=INFER_ITEM_TIME_LIMIT_S, soft=False)
    _RECORDERS[name]((video.pk,), {}, message)  # the solo worker's watchdog, before it ends the process
    assert _beat(django_capture_on_commit_callbacks, TaskQueue.INFER) == [(name, [video.pk], {"attempt": 2})]
    state = VideoTagState.objects.get(video=video)
    assert state.vlm_error == f"{message} Trying again (2 of 3)."
    assert "VLM tag suggestions failed: Stopped after 15 minutes" in _panel(client_as, video)
    assert suggest_vlm_tags(video.pk, attempt=2) == 0  # no VLM serves here: the try ends, owed nothing more
    state.refresh_from_db()
    assert (state.vlm_started_at, state.vlm_attempts) == (None, 0)


@pytest.mark.parametrize("kind", ["candidates", "vlm"])
def test_a_tag_task_ended_mid_try_leaves_it_running_for_the_hard_limits_record_and_the_sweep(
    kind, monkeypatch, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    """The worker ends the task mid-try (a prefork child's SIGTERM at the hard limit, a solo worker's shutdown:
    SystemExit on its way out of the service). Both tag tasks leave the try running, so the hard limit's recorder
    records it and the next sweep tries it again. The VLM task ended its try in a ``finally``: the recorder then
    found no try running, and the try was lost with no reason and no retry."""
    from moderation.tagging import services

    task, service = {
        "candidates": (generate_tag_candidates, "tag_candidates_generate"),
        "vlm": (suggest_vlm_tags, "tag_vlm_suggest"),
    }[kind]

    def ended(**_: Any) -> Any:
        raise SystemExit("SIGTERM")

    monkeypatch.setattr(services, service, ended)
    video = DecidedVideoFactory()
    with pytest.raises(SystemExit):
        task(video.pk)
    spec = TAG_TRIES[kind]
    state = VideoTagState.objects.get(video=video)
    assert getattr(state, spec.started) is not None and getattr(state, spec.attempts) == 1
    message = time_limit_text(task_name=spec.task, seconds=INFER_ITEM_TIME_LIMIT_S, soft=False)
    _RECORDERS[spec.task]((video.pk,), {}, message)
    assert _beat(django_capture_on_commit_callbacks, spec.queue) == [(spec.task, [video.pk], {"attempt": 2})]
    assert getattr(VideoTagState.objects.get(video=video), spec.error) == f"{message} Trying again (2 of 3)."


@pytest.mark.parametrize("kind", ["candidates", "vlm"])
def test_a_tag_try_stopped_at_its_soft_limit_ends_with_the_limit_in_words(kind, monkeypatch):  # type: ignore[no-untyped-def]
    """The panel said "VLM tag suggestions failed: SoftTimeLimitExceeded()"."""
    from celery.exceptions import SoftTimeLimitExceeded

    from moderation.tagging import services

    task, service = {
        "candidates": (generate_tag_candidates, "tag_candidates_generate"),
        "vlm": (suggest_vlm_tags, "tag_vlm_suggest"),
    }[kind]

    def stopped(**_: Any) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, service, stopped)
    video = DecidedVideoFactory()
    task.apply(args=[video.pk])
    spec = TAG_TRIES[kind]
    state = VideoTagState.objects.get(video=video)
    assert (getattr(state, spec.started), getattr(state, spec.attempts)) == (None, 0)  # ended: nothing owed
    reason = getattr(state, spec.error)
    assert reason.startswith("Stopped after ") and "soft time limit" in reason, reason


def _given_up(video_id: int, kind: str) -> None:
    """Three tries in a row lost, the third recorded given up by the sweep."""
    spec = TAG_TRIES[kind]
    VideoTagState.objects.update_or_create(
        video_id=video_id, defaults={spec.attempts: 3, spec.started: None, spec.error: "OOM. Given up after 3 tries"}
    )


def test_a_given_up_tag_task_has_try_again_on_the_panel_which_queues_it_once_and_is_audited(
    django_capture_on_commit_callbacks, make_user
):  # type: ignore[no-untyped-def]
    """Given up after 3 lost tries, a video's tags had no way back: the panel said so and offered nothing."""
    from django.test import Client

    from moderation.review.models import AuditEvent

    video = DecidedVideoFactory()
    _given_up(video.pk, "candidates")
    user = make_user("moderator")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse("moderation:tag_try_again", args=[video.pk])
    panel = client.get(reverse("moderation:tag_panel", args=[video.pk])).content.decode()
    assert f'hx-post="{url}"' in panel and "Try again: tag candidates" in panel
    assert "Try again: VLM" not in panel  # only the task that was given up
    token = client.cookies["csrftoken"].value

    assert client.post(url, {"kind": "candidates"}, HTTP_HX_REQUEST="true").status_code == 403  # no CSRF token
    broker = broker_client()
    broker.delete(TaskQueue.MEDIA.value)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, {"kind": "candidates"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
        second = client.post(url, {"kind": "candidates"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert first.status_code == 200 and second.status_code == 409
    html = first.content.decode()
    assert html.startswith('<div id="tags-panel"') or 'id="tags-panel"' in html[:400]
    assert "Making this video&#x27;s tag candidates was queued again" in html and "Try again:" not in html
    assert "is not given up (queued again already, or running): nothing was queued." in second.content.decode()
    queued = [json.loads(raw) for raw in broker.lrange(TaskQueue.MEDIA.value, 0, -1)]
    broker.delete(TaskQueue.MEDIA.value)
    assert [m["headers"]["task"] for m in queued] == ["moderation.tagging.tasks.generate_tag_candidates"]
    assert json.loads(base64.b64decode(queued[0]["body"]))[:2] == [[video.pk], {"attempt": 1}]
    state = VideoTagState.objects.get(video=video)
    assert (state.candidates_attempts, state.candidates_started_at, state.error) == (0, None, "")
    event = AuditEvent.objects.get(action="tags.try_again")
    assert (event.actor_id, event.object_type, event.object_id) == (user.pk, "video", str(video.pk))
    assert event.payload["task"] == "candidates" and event.payload["tries_given_up"] == 3

    assert generate_tag_candidates(video.pk, attempt=1) >= 0  # the queued try runs: taken, not refused
    state.refresh_from_db()
    assert state.candidates_attempts == 0 and "given up" not in state.error


def test_try_again_is_refused_to_who_may_not_tag_and_to_a_get(client_as):  # type: ignore[no-untyped-def]
    video = DecidedVideoFactory()
    _given_up(video.pk, "vlm")
    url = reverse("moderation:tag_try_again", args=[video.pk])
    assert client_as("labeler").post(url, {"kind": "vlm"}).status_code == 403
    assert client_as("admin").get(url).status_code == 303  # sent to the tags screen, nothing tried
    assert VideoTagState.objects.get(video=video).vlm_attempts == 3
    assert client_as("admin").post(url, {"kind": "nonsense"}, HTTP_HX_REQUEST="true").status_code == 409
