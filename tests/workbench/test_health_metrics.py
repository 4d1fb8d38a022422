"""/healthz, /readyz, the protected /metrics endpoint and JSON logs."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from moderation.integrations.models import OutboxEvent
from tests.factories import DecisionFactory, ReviewTaskFactory
from workbench.health import HEARTBEAT_PREFIX, _redis, worker_heartbeat
from workbench.jsonlog import JsonFormatter


@pytest.fixture
def no_heartbeats():  # type: ignore[no-untyped-def]
    client = _redis()
    for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*"):
        client.delete(key)
    yield client
    for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*"):
        client.delete(key)


def test_healthz_answers_without_login():
    resp = Client().get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_needs_database_broker_and_a_recent_worker_for_each_required_queue(no_heartbeats, settings):
    settings.READYZ_REQUIRED_QUEUES = ["default", "media"]
    settings.METRICS_TOKEN = "scrape-secret"
    operator = Client(HTTP_AUTHORIZATION="Bearer scrape-secret")
    resp = operator.get("/readyz")
    body = resp.json()
    assert resp.status_code == 503 and body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["workers"]["error"] == "no worker seen recently"

    worker_heartbeat(hostname="media@a", queues=["media"])
    body = operator.get("/readyz").json()
    assert body["checks"]["workers"]["missing_queues"] == ["default"]

    worker_heartbeat(hostname="cpu@b", queues=["default"])
    resp = operator.get("/readyz")
    assert resp.status_code == 200 and resp.json()["checks"]["workers"]["seen"] == ["cpu@b", "media@a"]
    # Anyone (a probe) reads the status and which checks pass, not the deployment's host names or errors.
    anonymous = Client().get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {
        "status": "ready",
        "checks": {
            "database": {"ok": True},
            "migrations": {"ok": True},
            "broker": {"ok": True},
            "workers": {"ok": True},
        },
    }

    settings.WORKER_SEEN_SECONDS = 1  # a worker that stops beating stops counting
    worker_heartbeat(hostname="cpu@b", queues=["default"])
    # Its beat lapses 1 s after it was written: Redis expires the key then (to the millisecond); gone, it is not ready.
    assert 0 < no_heartbeats.pttl(HEARTBEAT_PREFIX + "cpu@b") <= 1000
    no_heartbeats.delete(HEARTBEAT_PREFIX + "cpu@b")
    assert Client().get("/readyz").status_code == 503


@pytest.fixture
def migrations_unchecked(monkeypatch):  # type: ignore[no-untyped-def]
    """Readiness remembers, per process, that every migration was applied; these tests start from not knowing."""
    import workbench.health

    monkeypatch.setattr(workbench.health, "_all_migrations_applied", False)


@pytest.mark.django_db
def test_readyz_is_not_ready_until_every_migration_of_this_code_is_applied(
    no_heartbeats, settings, migrations_unchecked
):
    """A new release's web process answering before `migrate` finished serves pages whose tables or columns do
    not exist yet: /readyz says which migrations are missing (to an operator) and keeps the proxy away."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    settings.METRICS_TOKEN = "scrape-secret"
    worker_heartbeat(hostname="cpu@b", queues=["default"])
    operator = Client(HTTP_AUTHORIZATION="Bearer scrape-secret")
    latest = max(name for app, name in MigrationLoader(connection).graph.leaf_nodes() if app == "workbench")
    with connection.cursor() as cur:  # the real table, inside this test's transaction: as before `migrate`
        cur.execute("DELETE FROM django_migrations WHERE app = 'workbench' AND name = %s", [latest])
    resp = operator.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["migrations"] == {
        "ok": False,
        "error": "1 migration(s) not applied: run `manage.py migrate`",
        "unapplied": [f"workbench.{latest}"],
    }
    assert Client().get("/readyz").json()["checks"]["migrations"] == {"ok": False}
    with connection.cursor() as cur:
        cur.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('workbench', %s, now())", [latest])
    resp = operator.get("/readyz")
    assert resp.status_code == 200 and resp.json()["checks"]["migrations"] == {"ok": True}


@pytest.mark.django_db
def test_probes_answer_whatever_host_they_ask_by(no_heartbeats, settings):
    """Docker's healthcheck asks http://127.0.0.1:8000/readyz and a kubelet the pod's IP; production's
    ALLOWED_HOSTS names the public host only. The probes answer them; every other page still refuses the host."""
    settings.ALLOWED_HOSTS = ["review.example.com"]
    settings.METRICS_TOKEN = "scrape-secret"
    worker_heartbeat(hostname="cpu@b", queues=["default"])
    by_address = Client(HTTP_HOST="10.1.2.3:8000")
    assert by_address.get("/healthz").json() == {"status": "ok"}
    ready = by_address.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["workers"] == {"ok": True}
    detail = by_address.get("/readyz", HTTP_AUTHORIZATION="Bearer scrape-secret").json()
    assert detail["checks"]["workers"]["seen"] == ["cpu@b"]
    assert by_address.get("/login/").status_code == 400  # DisallowedHost, as before
    assert Client(HTTP_HOST="review.example.com").get("/readyz").status_code == 200


@pytest.mark.django_db
def test_metrics_are_protected_and_computed_from_the_database(client_as, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 401
    assert client_as("moderator").get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401

    late = ReviewTaskFactory(deadline=timezone.now() - timedelta(hours=1))
    DecisionFactory(policy_version=late.decision.policy_version, latency_ms=1500.0)
    OutboxEvent.objects.create(type="model.promoted", payload={})
    OutboxEvent.objects.filter().update(created_at=timezone.now() - timedelta(minutes=5))

    resp = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/plain")
    text = resp.content.decode()
    assert 'workbench_review_queue_depth{queue="default",status="pending"} 1.0' in text
    assert 'workbench_review_sla_breached{queue="default"} 1.0' in text
    # the late task's decision took 0 ms, the other 1.5 s
    assert 'workbench_model_latency_seconds_bucket{le="1.0",model="evidence-baseline-v1"} 1.0' in text
    assert 'workbench_model_latency_seconds_bucket{le="2.5",model="evidence-baseline-v1"} 2.0' in text
    assert "workbench_outbox_undispatched 1.0" in text
    age = next(line for line in text.splitlines() if line.startswith("workbench_outbox_oldest_age_seconds "))
    assert 290 < float(age.split()[1]) < 400
    assert 'workbench_celery_queue_length{queue="default"}' in text
    assert client_as("admin").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_claim_latency_is_observed(client_as):
    before = REGISTRY.get_sample_value("workbench_review_claim_seconds_count", {"queue": "any"}) or 0.0
    client_as("moderator").post("/review/claim/")
    assert REGISTRY.get_sample_value("workbench_review_claim_seconds_count", {"queue": "any"}) == before + 1


def test_celery_task_duration_and_failure_are_counted_per_queue():
    from celery import signals

    class FakeTask:
        name = "moderation.integrations.tasks.deliver_webhook"
        queue = None

        class request:  # noqa: N801
            delivery_info = {"routing_key": "default"}

    labels = {"task": FakeTask.name, "queue": "default"}
    before = REGISTRY.get_sample_value("workbench_celery_task_seconds_count", labels) or 0.0
    failures = REGISTRY.get_sample_value("workbench_celery_task_failures_total", labels) or 0.0
    signals.task_prerun.send(sender=FakeTask, task_id="t1", task=FakeTask)
    signals.task_failure.send(sender=FakeTask, task_id="t1")
    signals.task_postrun.send(sender=FakeTask, task_id="t1", task=FakeTask)
    assert REGISTRY.get_sample_value("workbench_celery_task_seconds_count", labels) == before + 1
    assert REGISTRY.get_sample_value("workbench_celery_task_failures_total", labels) == failures + 1


def test_json_log_lines_carry_level_logger_message_and_extras():
    record = logging.LogRecord("moderation.x", logging.WARNING, __file__, 1, "delivery %s failed", ("7",), None)
    record.delivery = 7
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"], line["delivery"]) == (
        "WARNING",
        "moderation.x",
        "delivery 7 failed",
        7,
    )


def test_a_worker_container_is_healthy_while_its_own_worker_beats(no_heartbeats, settings, tmp_path):
    """compose's worker healthcheck (`python -m workbench.worker_probe`): a worker of this host (a container's
    own, named `<kind>@<container host name>`) beat recently; another host's worker does not make it healthy."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WORKBENCH_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="workbench.settings",
        REDIS_URL=settings.REDIS_URL,
        DATABASE_URL="postgres://workbench:pw@127.0.0.1:1/workbench",
        WORKBENCH_VAR_DIR=str(tmp_path),
    )

    def probe() -> subprocess.CompletedProcess[str]:
        root = Path(__file__).resolve().parent.parent.parent
        command = [sys.executable, "-m", "workbench.worker_probe"]
        return subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=60)

    worker_heartbeat(hostname="media@another-container", queues=["media"])
    down = probe()
    assert down.returncode == 1 and f"no worker on {socket.gethostname()}" in down.stdout, down.stdout + down.stderr
    worker_heartbeat(hostname=f"infer@{socket.gethostname()}", queues=["infer"])
    up = probe()
    assert up.returncode == 0 and up.stdout.strip() == f"alive: infer@{socket.gethostname()} (infer)", up.stderr
