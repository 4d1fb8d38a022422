"""The outbox survives what kills ordinary "send after save" code: the queued message lost after
commit, and the worker SIGKILLed in the middle of the HTTP request."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from moderation.inference.services import model_version_promote
from moderation.integrations.models import OutboxEvent, WebhookDelivery
from moderation.integrations.signing import verify
from moderation.integrations.webhooks import webhook_delivery_send, webhook_endpoint_create, webhooks_sweep
from tests.factories import ModelVersionFactory
from tests.moderation.integrations.receiver import Receiver
from tests.workers import solo_worker
from workbench.celery import app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

TIMEOUT_S = 2  # the worker's webhook timeout: its lease lapses 2·2+5 s after it started sending


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    return solo_worker("default", log, WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT_S))


def test_event_lost_after_commit_and_worker_killed_mid_send_is_still_delivered(platform, tmp_path):
    log = tmp_path / "worker.log"
    with Receiver() as receiver:
        receiver.hold_first = True  # the first request hangs: the worker is killed while it waits
        _endpoint, secret = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        model_version_promote(model_version=ModelVersionFactory(name="candidate-kill"))  # commits with its event
        app.control.purge()  # the message queued after commit is lost (a crash before any worker took it)
        event = OutboxEvent.objects.get()
        assert event.dispatched_at is None

        first = _start_worker(log)
        try:
            before_send = timezone.now()
            assert webhooks_sweep(grace_seconds=0)["dispatched"] == 1  # the sweep finds the undispatched event
            assert receiver.arrived.wait(90), log.read_text()[-3000:]
            os.kill(first.pid, signal.SIGKILL)  # mid-request
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "sending" and delivery.attempts == 1  # died with the request in flight
        lease = timedelta(seconds=2 * TIMEOUT_S + 5)  # taken when the worker started sending
        assert before_send + lease <= delivery.lease_expires_at <= timezone.now() + lease  # type: ignore[operator]
        app.control.purge()  # and whatever it held is gone too

        # Nobody may send it while the dead worker's lease runs; once it lapses the sweep re-queues it
        # and the next sender delivers it (here the test process itself, standing in for a new worker).
        assert webhook_delivery_send(delivery_id=delivery.pk) == "in-flight"
        assert webhooks_sweep(grace_seconds=0)["requeued"] == 0
        # The lease lapses (aged, as the reapers' tests age a heartbeat, rather than slept out: ~8 s).
        WebhookDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert webhooks_sweep(grace_seconds=0)["requeued"] == 1
        app.control.purge()
        assert webhook_delivery_send(delivery_id=delivery.pk) == "delivered"

    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.last_status_code == 200
    assert len(receiver.requests) == 2  # at least once: the cut-off request and the redelivery
    assert {r["headers"]["Workbench-Event-Id"] for r in receiver.requests} == {str(event.pk)}
    last = receiver.requests[-1]
    verify(secret=secret, header=last["headers"]["Workbench-Signature"], body=last["body"])
