"""A shadow decision that failed (the candidate's model server down…) is tried again by the beat, with backoff,
up to SHADOW_MAX_ATTEMPTS tries; after the last it stays failed and the model registry says so. It was never
tried again: one server restart left a candidate's comparison with holes for good.

The candidate is a vLLM-server model version: the server is down (nothing listens) and, in the last test, comes
back (the stub server of tests/vllm_stub.py). The beat's messages go through the real Redis broker."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.inference.services import model_version_register, model_version_serving
from tests.broker import broker_client
from tests.factories import DecisionFactory
from tests.vllm_stub import vllm_stub
from training.models import ShadowDecision
from training.release import shadow_agreement, shadow_decide, shadow_start, shadow_stop
from training.tasks import retry_failed_shadow_decisions, retry_shadow_decision, run_shadow_decision
from workbench.celery import app
from workbench.queues import TASK_ROUTES, TaskQueue

ANSWER = json.dumps(
    {
        "content_extraction": "A cooking video [t=1.0s]",
        "analysis": "noodles being made",
        "intermediate_check": "consistent",
        "user_feedback": "none",
        "label": "正向",
        "confidence": 0.9,
    },
    ensure_ascii=False,
)


def _failed_shadow(policy_version):  # type: ignore[no-untyped-def]
    candidate = model_version_register(name="vllm-candidate", backend="vllm", base_model="m")
    shadow_start(model_version=candidate, by=None)
    decision = DecisionFactory(
        policy_version=policy_version, model_version=model_version_serving(), label="正向", video__title="noodles"
    )
    assert run_shadow_decision(decision.pk) == 1
    return ShadowDecision.objects.get(decision=decision, model_version=candidate)


def _due(shadow: ShadowDecision) -> None:
    """The backoff has passed (as the reapers' tests age a heartbeat)."""
    ShadowDecision.objects.filter(pk=shadow.pk).update(retry_at=timezone.now() - timedelta(seconds=1))


def _beat_queues(django_capture_on_commit_callbacks) -> list[list[int]]:  # type: ignore[no-untyped-def]
    """Run the beat task; the arguments of each message it put on the infer queue, read back from Redis."""
    broker = broker_client()
    queue = TaskQueue.INFER.value
    broker.delete(queue)
    with django_capture_on_commit_callbacks(execute=True):
        queued = retry_failed_shadow_decisions()
    messages = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
    broker.delete(queue)
    assert len(messages) == len(queued)
    assert all(m["headers"]["task"] == "training.tasks.retry_shadow_decision" for m in messages)
    return [json.loads(base64.b64decode(m["body"]))[0] for m in messages]


def test_the_retry_runs_on_beat_and_each_try_on_the_infer_queue():
    assert TASK_ROUTES["training.tasks.retry_failed_shadow_decisions"] == TaskQueue.DEFAULT
    assert TASK_ROUTES["training.tasks.retry_shadow_decision"] == TaskQueue.INFER
    entries = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert entries["training.tasks.retry_failed_shadow_decisions"] <= 60


@pytest.mark.django_db
def test_a_failed_shadow_decision_is_tried_again_with_backoff_then_stays_failed(
    retries, policy_version, django_capture_on_commit_callbacks, client_as
):  # type: ignore[no-untyped-def]
    shadow = _failed_shadow(policy_version)
    assert "Connection refused" in shadow.error and not shadow.label
    assert shadow.attempts == 1
    assert timedelta(seconds=55) < shadow.retry_at - timezone.now() <= timedelta(seconds=60)  # type: ignore[operator]

    assert _beat_queues(django_capture_on_commit_callbacks) == []  # not due yet

    _due(shadow)
    assert _beat_queues(django_capture_on_commit_callbacks) == [[shadow.pk, 2]]
    assert _beat_queues(django_capture_on_commit_callbacks) == []  # queued once: the next beat leaves it alone
    assert retry_shadow_decision(shadow.pk, 2) == "failed"  # the server is still down
    shadow.refresh_from_db()
    assert shadow.attempts == 2 and "Connection refused" in shadow.error
    # The wait doubles: 120 s after the second try.
    assert timedelta(seconds=115) < shadow.retry_at - timezone.now() <= timedelta(seconds=120)  # type: ignore[operator]
    assert retry_shadow_decision(shadow.pk, 2) == "skipped"  # a redelivered message: no second try, no count
    shadow.refresh_from_db()
    assert shadow.attempts == 2

    _due(shadow)
    assert _beat_queues(django_capture_on_commit_callbacks) == [[shadow.pk, 3]]
    assert retry_shadow_decision(shadow.pk, 3) == "given up"  # the last of SHADOW_MAX_ATTEMPTS
    shadow.refresh_from_db()
    assert shadow.attempts == 3 and shadow.retry_at is None and "Connection refused" in shadow.error
    assert _beat_queues(django_capture_on_commit_callbacks) == []  # never again

    stats = shadow_agreement(model_version=shadow.model_version)
    assert (stats["failed"], stats["given_up"], stats["retrying"], stats["n"]) == (1, 1, 0, 0)
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="vllm-candidate"') :].split("</tr>")[0]
    assert "1 item it could not decide; latest: RuntimeError: vLLM server at" in row
    assert "1 failed for good</strong> (no try left of 3)" in row


@pytest.mark.django_db
def test_a_stopped_candidate_is_not_tried_again_until_it_shadows_again(
    retries, policy_version, django_capture_on_commit_callbacks, client_as
):  # type: ignore[no-untyped-def]
    shadow = _failed_shadow(policy_version)
    _due(shadow)
    shadow_stop(model_version=shadow.model_version, by=None)
    assert _beat_queues(django_capture_on_commit_callbacks) == []
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="vllm-candidate"') :].split("</tr>")[0]
    assert "1 to be tried again once it shadows again" in row

    shadow_start(model_version=shadow.model_version, by=None)
    assert _beat_queues(django_capture_on_commit_callbacks) == [[shadow.pk, 2]]


@pytest.mark.integration
def test_a_retry_on_the_worker_records_the_decision_once_the_server_answers(retries, celery_worker, policy_version):  # type: ignore[no-untyped-def]
    shadow = _failed_shadow(policy_version)
    assert shadow_decide(decision_id=shadow.decision_id) == []  # redelivered first try: nothing new

    with vllm_stub(answer=ANSWER) as server:
        retries.VLLM_SERVER_URL = server.url  # the server is back
        _due(shadow)
        assert retry_failed_shadow_decisions() == [shadow.pk]  # outside a transaction: sent at once
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ShadowDecision.objects.get(pk=shadow.pk).attempts < 2:
            time.sleep(0.2)
        assert len(server.bodies) == 1

    shadow.refresh_from_db()
    assert shadow.attempts == 2 and shadow.error == "" and shadow.retry_at is None
    assert shadow.label == "正向" and shadow.agrees
    stats = shadow_agreement(model_version=shadow.model_version)
    assert (stats["n"], stats["agree"], stats["failed"]) == (1, 1, 0)
    assert retry_failed_shadow_decisions() == []


@pytest.mark.django_db
def test_shadow_decisions_that_failed_before_0008_are_tried_again(policy_version):  # type: ignore[no-untyped-def]
    """0008 undone and done again inside the test's transaction (as the 0033 migration test does): a failure
    recorded before retries existed is scheduled from the day it runs; a decided one is left alone."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before_key, migration_key = ("training", "0007_shadowdecision_error"), ("training", "0008_shadowdecision_retries")
    candidate = model_version_register(name="old-candidate", backend="vllm", base_model="m")
    decisions = [DecisionFactory(policy_version=policy_version, video__title=t) for t in ("a", "b")]
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration(*migration_key)
    before = executor.loader.project_state(before_key)
    after = executor.loader.project_state(migration_key)
    with connection.schema_editor(atomic=True) as editor:
        migration.unapply(after, editor)
    Old = before.apps.get_model("training", "ShadowDecision")
    Old.objects.create(decision_id=decisions[0].pk, model_version_id=candidate.pk, error="server down")
    Old.objects.create(decision_id=decisions[1].pk, model_version_id=candidate.pk, label="正向")
    with connection.cursor() as cursor:  # the rows' deferred foreign-key checks now, or ALTER TABLE refuses
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor(atomic=True) as editor:
        migration.apply(before, editor)

    failed, decided = (ShadowDecision.objects.get(decision=d) for d in decisions)
    assert failed.attempts == decided.attempts == 1
    assert failed.retry_at is not None and failed.retry_at <= timezone.now()
    assert decided.retry_at is None
