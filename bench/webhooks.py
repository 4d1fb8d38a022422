"""Webhook delivery under a flaky receiver: 2,000 events, at-least-once, nothing lost.

A receiver on 127.0.0.1 (its own process) answers 500 to 30 % of requests at random and is killed
(SIGKILL) and restarted 2 s later once a third of the events have been acknowledged. Ours: each
event is written through the outbox (one transaction per event, as the state changes that raise
them are), fanned out and delivered by Celery workers (prefork, WEBHOOK_RETRY_BASE_SECONDS=0.2,
cap 5 s), with the sweep standing in for beat every 5 s. Bare: the same 2,000 bodies posted by a
single loop of ``requests.post`` that retries each one at once until it gets a 2xx (connection
refused while the receiver is down: retried after 0.1 s) — the same kill and restart. Runs on a
throwaway test database; bare, ours, bare in one run (the ratio uses the median bare).

    .venv/bin/python bench/webhooks.py [--events 2000] [--fail-rate 0.3] [--concurrency 8]

``delivered_unique``: events the receiver acknowledged (2xx) at least once; ``lost`` = events −
delivered_unique; ``duplicates_delivered``: acknowledgements beyond the first per event;
``p99_delivery_s``: 99th percentile of (first acknowledgement − event written). The last line
printed is one JSON object, ``ratio`` first (our wall time ÷ the bare loop's).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.webhooks``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, django_setup  # noqa: E402

RECEIVER = r"""
import json, random, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, fail_rate, log_path, seed = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
log = open(log_path, "a", buffering=1)
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event_id = json.loads(body)["id"]
        code = 500 if rng.random() < fail_rate else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        log.write(f"{event_id} {code} {time.time():.6f}\n")
    def log_message(self, *a):
        pass
ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", port), H)
server.daemon_threads = True
server.serve_forever()
"""


class FlakyReceiver:
    """The receiver process; ``kill_and_restart`` takes it down for ``down_s`` seconds."""

    def __init__(self, port: int, fail_rate: float, log: Path) -> None:
        self.port, self.fail_rate, self.log = port, fail_rate, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(self.port), str(self.fail_rate), str(self.log), str(self.starts)]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def acked(self) -> dict[str, list[float]]:
        """event id -> times it was answered 2xx."""
        out: dict[str, list[float]] = {}
        if not self.log.exists():
            return out
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "200":
                out.setdefault(parts[0], []).append(float(parts[2]))
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_when(receiver: FlakyReceiver, threshold: int, state: dict[str, bool], down_s: float) -> None:
    if not state["killed"] and len(receiver.acked()) >= threshold:
        receiver.kill()
        state["killed"] = True
        time.sleep(down_s)
        receiver.start()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_bare(bodies: list[tuple[str, bytes]], fail_rate: float, workdir: Path, down_s: float) -> dict[str, float]:
    import requests

    receiver = FlakyReceiver(_free_port(), fail_rate, workdir / f"bare-{time.monotonic_ns()}.log")
    receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    state = {"killed": False}
    session = requests.Session()
    t0 = time.perf_counter()
    try:
        for i, (_event_id, body) in enumerate(bodies):
            while True:
                try:
                    r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
                    if 200 <= r.status_code < 300:
                        break
                except requests.RequestException:
                    session = requests.Session()
                    time.sleep(0.1)
            if i % 50 == 0:
                _kill_when(receiver, len(bodies) // 3, state, down_s)
        wall = time.perf_counter() - t0
    finally:
        receiver.kill()
    return {"wall_s": wall, "acked_unique": len(receiver.acked())}


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    host = db.get("HOST") or "localhost"
    if host.startswith("/"):
        return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@/{db['NAME']}?host={host}&port={db.get('PORT') or 5432}"
    return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def run_ours(n: int, fail_rate: float, workdir: Path, down_s: float, concurrency: int, timeout_s: float) -> dict:
    from django.conf import settings
    from django.db import transaction

    from moderation.integrations.models import OutboxEvent, WebhookDelivery
    from moderation.integrations.services import event_record, integration_create
    from moderation.integrations.webhooks import webhook_endpoint_create, webhooks_sweep

    receiver = FlakyReceiver(_free_port(), fail_rate, workdir / "ours.log")
    receiver.start()
    integration, _token = integration_create(name=f"bench-{time.monotonic_ns()}")
    endpoint, _secret = webhook_endpoint_create(
        integration=integration,
        url=f"http://127.0.0.1:{receiver.port}/hook",
        event_types=["decision.created"],
        only_own_videos=False,
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings_test",
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOK_RETRY_MAX_SECONDS": "5",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
        "WEBHOOK_MAX_ATTEMPTS": "100",
        "WEBHOOK_DISABLE_AFTER_FAILURES": "1000000",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", "default", "--pool", "prefork",
         "--concurrency", str(concurrency), "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=(workdir / "worker.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    state = {"killed": False}
    try:
        # The worker's start is not counted: wait for its heartbeat (it beats once it is ready).
        from workbench.health import workers_seen

        deadline = time.monotonic() + 180
        while not workers_seen() and time.monotonic() < deadline:
            time.sleep(0.5)
        t0 = time.perf_counter()
        for i in range(n):
            with transaction.atomic():  # one state change, one event, one transaction
                event_record(type="decision.created", data={"decision_id": i, "label": "正向"})
            if i % 50 == 0:
                _kill_when(receiver, n // 3, state, down_s)
        last_sweep = time.monotonic()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _kill_when(receiver, n // 3, state, down_s)
            delivered = WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").count()
            if delivered == n:
                break
            if time.monotonic() - last_sweep > 5:  # beat's sweep (every 15 s in production; grace 5 s here)
                webhooks_sweep(grace_seconds=5)
                last_sweep = time.monotonic()
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        created = {str(pk): at.timestamp() for pk, at in OutboxEvent.objects.values_list("pk", "created_at")}
        attempts = list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("attempts", flat=True))
        failed = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(status="delivered").count()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.kill()
    acked = receiver.acked()
    ours_ids = set(created)
    unique = len([e for e in acked if e in ours_ids])
    lags = [min(times) - created[e] for e, times in acked.items() if e in created]
    return {
        "wall_s": wall,
        "delivered_unique": unique,
        "lost": n - unique,
        "duplicates_delivered": sum(len(t) - 1 for e, t in acked.items() if e in ours_ids),
        "p50_delivery_s": round(_pct(lags, 0.5), 3) if lags else None,
        "p99_delivery_s": round(_pct(lags, 0.99), 3) if lags else None,
        "attempts_mean": round(statistics.mean(attempts), 3) if attempts else None,
        "not_delivered_rows": failed,
        "receiver_killed": state["killed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--down-s", type=float, default=2.0)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()

    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    bodies = [
        (f"bare-{i}", json.dumps({"id": f"bare-{i}", "type": "decision.created"}).encode()) for i in range(args.events)
    ]
    old = setup_databases(verbosity=0, interactive=False)
    try:
        bare = [run_bare(bodies, args.fail_rate, workdir, args.down_s)]
        print(f"bare: {bare[0]['wall_s']:.1f} s", flush=True)
        ours = run_ours(args.events, args.fail_rate, workdir, args.down_s, args.concurrency, args.timeout_s)
        print(
            f"ours: {ours['wall_s']:.1f} s, {ours['delivered_unique']} unique, {ours['duplicates_delivered']} duplicates",
            flush=True,
        )
        bare.append(run_bare(bodies, args.fail_rate, workdir, args.down_s))
        print(f"bare: {bare[1]['wall_s']:.1f} s", flush=True)
    finally:
        teardown_databases(old, verbosity=0)
    bare_wall = statistics.median(b["wall_s"] for b in bare)
    result = {
        "ratio": round(ours["wall_s"] / bare_wall, 2),
        "events": args.events,
        "delivered_unique": ours["delivered_unique"],
        "lost": ours["lost"],
        "duplicates_delivered": ours["duplicates_delivered"],
        "p99_delivery_s": ours["p99_delivery_s"],
        "p50_delivery_s": ours["p50_delivery_s"],
        "ours_wall_s": round(ours["wall_s"], 2),
        "bare_wall_s": [round(b["wall_s"], 2) for b in bare],
        "attempts_mean": ours["attempts_mean"],
        "not_delivered_rows": ours["not_delivered_rows"],
        "receiver_killed": ours["receiver_killed"],
        "fail_rate": args.fail_rate,
        "concurrency": args.concurrency,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
