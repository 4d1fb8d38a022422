"""A shadow decision whose worker was killed (the solo infer worker's hard time limit, out of memory, a node gone)
is recorded failed within minutes and tried again like any failed one, within SHADOW_MAX_ATTEMPTS. Before, a try
wrote its row only once it had an outcome: a killed one left no trace, and the item waited for the broker's
redelivery (CELERY_VISIBILITY_TIMEOUT, 6 hours), or, killed again, for ever.

The candidate is a vLLM-server model version. The beat's messages go through the real Redis broker; the kill is a
real `celery worker --pool solo` on the infer queue ended by its watchdog."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.inference.services import model_version_register, model_version_serving
from tests.factories import DecisionFactory
from tests.training.test_shadow_retries import _beat_queues, _due
from tests.workers import solo_worker, wait_for
from training.models import ShadowDecision
from training.release import SHADOW_TRY_STALLED_AFTER, shadow_agreement, shadow_decide, shadow_start
from training.tasks import retry_failed_shadow_decisions, retry_shadow_decision
from workbench.celery import app
from workbench.queues import INFER_ITEM_TIME_LIMIT_S, TaskQueue
from workbench.worker_limits import HARD_LIMIT_EXIT_STATUS


def _candidate_and_decision(policy_version):  # type: ignore[no-untyped-def]
    candidate = model_version_register(name="vllm-candidate", backend="vllm", base_model="m")
    shadow_start(model_version=candidate, by=None)
    decision = DecisionFactory(
        policy_version=policy_version, model_version=model_version_serving(), label="正向", video__title="noodles"
    )
    return candidate, decision


def _running(candidate, decision, *, attempts: int, minutes_ago: float, error: str = ""):  # type: ignore[no-untyped-def]
    """The row a try leaves when its worker is killed mid-way: taken (counted, ``started_at``), no outcome."""
    return ShadowDecision.objects.create(
        decision=decision,
        model_version=candidate,
        attempts=attempts,
        error=error,
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_shadow_try_is_one_item_through_the_candidates_with_the_item_limits():
    for name in ("training.tasks.run_shadow_decision", "training.tasks.retry_shadow_decision"):
        task = app.tasks[name]
        assert (task.soft_time_limit, task.time_limit) == (INFER_ITEM_TIME_LIMIT_S - 60, INFER_ITEM_TIME_LIMIT_S)
    assert timedelta(seconds=INFER_ITEM_TIME_LIMIT_S) < SHADOW_TRY_STALLED_AFTER <= timedelta(minutes=30)


@pytest.mark.django_db
def test_a_try_whose_worker_was_lost_is_recorded_failed_and_queued_again_once(
    retries, policy_version, django_capture_on_commit_callbacks, client_as
):  # type: ignore[no-untyped-def]
    candidate, decision = _candidate_and_decision(policy_version)
    fresh = _running(candidate, decision, attempts=1, minutes_ago=1)
    # Running within its limit: left alone by the beat, not counted as decided, not taken by a redelivered message.
    assert _beat_queues(django_capture_on_commit_callbacks) == []
    assert shadow_decide(decision_id=decision.pk) == []
    assert shadow_agreement(model_version=candidate)["n"] == 0
    fresh.refresh_from_db()
    assert fresh.started_at is not None and fresh.error == ""

    ShadowDecision.objects.filter(pk=fresh.pk).update(started_at=timezone.now() - SHADOW_TRY_STALLED_AFTER)
    assert _beat_queues(django_capture_on_commit_callbacks) == []  # recorded failed; its next try waits the backoff
    lost = ShadowDecision.objects.get(pk=fresh.pk)
    assert lost.started_at is None and lost.attempts == 1
    assert "nothing was heard from its worker for 20 minutes after it started" in lost.error
    assert timedelta(seconds=55) < lost.retry_at - timezone.now() <= timedelta(seconds=60)  # type: ignore[operator]

    _due(lost)
    assert _beat_queues(django_capture_on_commit_callbacks) == [[lost.pk, 2]]
    assert _beat_queues(django_capture_on_commit_callbacks) == []  # queued once
    assert retry_shadow_decision(lost.pk, 2) == "failed"  # the server is down: a counted, ordinary failure
    assert retry_shadow_decision(lost.pk, 2) == "skipped"  # the same message again: no second try
    lost.refresh_from_db()
    assert lost.attempts == 2 and lost.started_at is None and "Connection refused" in lost.error


@pytest.mark.django_db
def test_a_retry_message_for_a_try_another_worker_took_does_nothing(retries, policy_version):  # type: ignore[no-untyped-def]
    candidate, decision = _candidate_and_decision(policy_version)
    taken = _running(candidate, decision, attempts=2, minutes_ago=1, error="earlier failure")
    assert retry_shadow_decision(taken.pk, 2) == "skipped"
    assert retry_shadow_decision(taken.pk, 3) == "skipped"
    taken.refresh_from_db()
    assert taken.attempts == 2 and taken.started_at is not None
    stats = shadow_agreement(model_version=candidate)  # being tried again: not "failed for good"
    assert (stats["failed"], stats["retrying"], stats["given_up"], stats["n"]) == (1, 1, 0, 0)


@pytest.mark.django_db
def test_a_last_try_whose_worker_was_lost_fails_for_good_and_the_registry_says_so(
    retries, policy_version, django_capture_on_commit_callbacks, client_as
):  # type: ignore[no-untyped-def]
    candidate, decision = _candidate_and_decision(policy_version)
    last = _running(candidate, decision, attempts=3, minutes_ago=21, error="an earlier try's reason")
    assert _beat_queues(django_capture_on_commit_callbacks) == []
    last.refresh_from_db()
    assert last.started_at is None and last.retry_at is None and last.attempts == 3
    assert last.error.endswith("That was its last try of 3.")
    _due(last)
    assert _beat_queues(django_capture_on_commit_callbacks) == []  # no fourth try
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="vllm-candidate"') :].split("</tr>")[0]
    assert "1 item it could not decide; latest: This try left no result" in row
    assert "1 failed for good</strong> (no try left of 3)" in row


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that takes the connection and never answers: a model call stuck until its time limit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_shadow_decision_killed_at_the_hard_limit_is_recorded_and_tried_again(
    policy_version, silent_server, tmp_path, client_as
):  # type: ignore[no-untyped-def]
    candidate, decision = _candidate_and_decision(policy_version)
    log = tmp_path / "worker.log"
    with app.connection_for_write() as conn:  # the decision's own message, and earlier tests' ones
        conn.default_channel.queue_purge(TaskQueue.INFER.value)
    worker = solo_worker(TaskQueue.INFER.value, log, VLLM_SERVER_URL=silent_server, SHADOW_RETRY_BASE_SECONDS="60")
    try:
        app.send_task(
            "training.tasks.run_shadow_decision", args=[decision.pk], queue=TaskQueue.INFER.value, time_limit=3
        )
        wait_for(lambda: worker.poll() is not None, 120, "the worker to end at the hard limit", log)
        assert worker.returncode == HARD_LIMIT_EXIT_STATUS, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        with app.connection_for_write() as conn:  # the unacknowledged message, for the next test's worker
            conn.default_channel.queue_purge(TaskQueue.INFER.value)

    shadow = ShadowDecision.objects.get(decision=decision, model_version=candidate)
    # Recorded at once, with the reason, and scheduled like any failed try (not left to the 6-hour redelivery).
    assert shadow.started_at is None and shadow.attempts == 1 and not shadow.label
    assert shadow.error.startswith("Stopped after 3 s, this task's own time limit. The worker was restarted."), (
        shadow.error
    )
    assert shadow.retry_at is not None and shadow.retry_at - timezone.now() <= timedelta(seconds=60)
    _due(shadow)
    assert retry_failed_shadow_decisions() == [shadow.pk]
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="vllm-candidate"') :].split("</tr>")[0]
    assert "latest: Stopped after 3 s" in row and "1 to be tried again" in row
