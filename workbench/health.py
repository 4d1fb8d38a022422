"""Liveness and readiness: the database, its migrations, the broker, and Celery workers seen recently.

Each worker's main process writes a heartbeat key into Redis every WORKER_HEARTBEAT_SECONDS with
the queues it consumes (expiring after WORKER_SEEN_SECONDS); ``/readyz`` reads them.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "workbench:worker:"


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_CLIENT_URL, socket_timeout=2, socket_connect_timeout=2)


def worker_heartbeat(*, hostname: str, queues: list[str], client: Any = None) -> None:
    client = client or _redis()
    payload = json.dumps({"hostname": hostname, "queues": sorted(queues), "at": time.time()})
    client.set(HEARTBEAT_PREFIX + hostname, payload, ex=int(settings.WORKER_SEEN_SECONDS))


def workers_seen() -> list[dict[str, Any]]:
    client = _redis()
    keys = list(client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100))
    seen = []
    for raw in client.mget(keys) if keys else []:
        if raw:
            try:
                seen.append(json.loads(raw))
            except ValueError:
                continue
    return seen


def broker_queue_lengths() -> dict[str, int]:
    from workbench.queues import TaskQueue

    client = _redis()
    return {q.value: int(client.llen(q.value)) for q in TaskQueue}


# kombu's Redis transport keeps a queue as a list: a message is pushed at the head (LPUSH) and taken from the tail
# (BRPOP). A message a worker has taken and not acknowledged yet (prefetched and not started, or running with
# acks_late) is moved into this hash, keyed by delivery tag, as ``[message, exchange, routing key]``.
_UNACKED_KEY = "unacked"
_SCAN_CHUNK = 500


@dataclass(frozen=True)
class BrokerPlace:
    """Where one task's message is in the broker: ``taken`` by a worker that has not finished it (for a job still
    marked queued: taken, not started), or waiting on its queue with ``ahead`` messages a worker takes first."""

    taken: bool
    ahead: int


def _message_is(raw: bytes, *, task: str, first_arg: Any) -> bool:
    """Whether ``raw`` (a message as kombu stores it, or an unacked entry) runs ``task`` with ``first_arg`` first."""
    if task.encode() not in raw:  # most messages are another task's: not decoded
        return False
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # an unacked entry: [message, exchange, routing key]
            message = message[0]
        if message["headers"]["task"] != task:
            return False
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return isinstance(args, list) and bool(args) and args[0] == first_arg


def broker_task_place(*, queue: str, task: str, first_arg: Any, scan: int = 10_000) -> BrokerPlace | None:
    """Where the message of ``task`` whose first argument is ``first_arg`` is: taken by a worker (the unacked
    hash, a few entries: at most each worker's prefetch), or on ``queue`` with the messages a worker takes before
    it counted (read from the taking end, at most ``scan`` of them). None when it is in neither (lost, or further
    than ``scan`` in). Raises when Redis does not answer."""
    client = _redis()
    if any(_message_is(raw, task=task, first_arg=first_arg) for raw in client.hvals(_UNACKED_KEY)):
        return BrokerPlace(taken=True, ahead=0)
    read = 0
    while read < scan:
        # The next chunk toward the head, in list order (head first): reversed, the next message taken first.
        chunk = client.lrange(queue, -(read + _SCAN_CHUNK), -(read + 1))
        for offset, raw in enumerate(reversed(chunk)):
            if _message_is(raw, task=task, first_arg=first_arg):
                return BrokerPlace(taken=False, ahead=read + offset)
        read += len(chunk)
        if len(chunk) < _SCAN_CHUNK:
            break
    return None


def queue_workers() -> list[dict[str, Any]]:
    """Each queue of the enum with the workers that beat within WORKER_SEEN_SECONDS while consuming it and the
    tasks waiting on it in the broker. A queue nobody consumes keeps its tasks (Redis holds them until a worker
    starts), so an operator must be told which: a GPU node down, `--scale worker-infer=0`. Raises when Redis
    does not answer."""
    from workbench.queues import TaskQueue

    seen = workers_seen()
    waiting = broker_queue_lengths()
    return [
        {
            "queue": q.value,
            "workers": sorted(str(w.get("hostname", "?")) for w in seen if q.value in w.get("queues", [])),
            "waiting": waiting[q.value],
        }
        for q in TaskQueue
    ]


def local_worker_alive() -> tuple[bool, str]:
    """Whether a worker on this host (``<name>@<this host name>``: a container's own worker) beat within
    WORKER_SEEN_SECONDS, and a line that says so. The worker containers' healthcheck (``workbench.worker_probe``)."""
    host = socket.gethostname()
    try:
        mine = [w for w in workers_seen() if str(w.get("hostname", "")).partition("@")[2] == host]
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}: {exc}"[:300]
    if not mine:
        return False, f"no worker on {host} beat within {settings.WORKER_SEEN_SECONDS} s"
    names = ", ".join(sorted(f"{w['hostname']} ({','.join(w.get('queues', []))})" for w in mine))
    return True, f"alive: {names}"


def start_heartbeat(*, hostname: str, queues: list[str]) -> threading.Thread:
    """Beat in a daemon thread of the worker's main process until it exits."""

    def beat() -> None:
        client = _redis()
        while True:
            try:
                worker_heartbeat(hostname=hostname, queues=queues, client=client)
            except Exception:  # the broker blinked: try again next time
                logger.warning("worker heartbeat failed", exc_info=True)
            time.sleep(float(settings.WORKER_HEARTBEAT_SECONDS))

    thread = threading.Thread(target=beat, name="workbench-heartbeat", daemon=True)
    thread.start()
    return thread


def connect_worker_heartbeat() -> None:
    from celery import signals

    @signals.worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_: Any) -> None:
        app = sender.app if sender is not None else None
        queues = sorted(app.amqp.queues.consume_from) if app is not None else []
        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        start_heartbeat(hostname=hostname, queues=queues)

    @signals.worker_shutdown.connect(weak=False)
    def _shutdown(sender: Any = None, **_: Any) -> None:
        try:
            _redis().delete(HEARTBEAT_PREFIX + str(getattr(sender, "hostname", "") or socket.gethostname()))
        except Exception:  # the key expires by itself
            logger.info("could not remove the worker heartbeat", exc_info=True)


# Set once this process found every migration of its code applied: they stay applied (a new release is a new
# process), so a probe every few seconds does not rebuild the migration graph each time.
_all_migrations_applied = False


def unapplied_migrations() -> list[str]:
    """``app.name`` of each migration of this code the database has not applied, in the order migrate would."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _migrations_check() -> dict[str, Any]:
    global _all_migrations_applied
    if _all_migrations_applied:
        return {"ok": True}
    unapplied = unapplied_migrations()
    if not unapplied:
        _all_migrations_applied = True
        return {"ok": True}
    return {
        "ok": False,
        "error": f"{len(unapplied)} migration(s) not applied: run `manage.py migrate`",
        "unapplied": unapplied[:20],
    }


def readiness() -> tuple[bool, dict[str, Any]]:
    """(ready, checks): the database answers and has every migration of this code applied, the broker
    answers, and every queue in READYZ_REQUIRED_QUEUES has a worker that beat within WORKER_SEEN_SECONDS."""
    checks: dict[str, Any] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if checks["database"]["ok"]:
        try:
            checks["migrations"] = _migrations_check()
        except Exception as exc:
            checks["migrations"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    else:
        checks["migrations"] = {"ok": False, "error": "database unreachable"}
    try:
        _redis().ping()
        checks["broker"] = {"ok": True}
    except Exception as exc:
        checks["broker"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if checks["broker"]["ok"]:
        seen = workers_seen()
        covered = {q for w in seen for q in w.get("queues", [])}
        required = [q for q in settings.READYZ_REQUIRED_QUEUES if q]
        missing = [q for q in required if q not in covered]
        checks["workers"] = {
            "ok": bool(seen) and not missing,
            "seen": sorted(w.get("hostname", "?") for w in seen),
            "queues": sorted(covered),
            **({"missing_queues": missing} if missing else {}),
            **({"error": "no worker seen recently"} if not seen else {}),
        }
    else:
        checks["workers"] = {"ok": False, "error": "broker unreachable"}
    return all(c["ok"] for c in checks.values()), checks
