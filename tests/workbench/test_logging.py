"""Log lines a platform's log shipper reads: one format for web, workers and beat, on stdout, with request ids."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from django.http import HttpResponse
from django.test import Client, RequestFactory

from workbench.jsonlog import TEXT_FORMAT, RequestIdFilter
from workbench.middleware import RequestIdMiddleware

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_request_and_its_log_lines_share_one_id_the_response_names():
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logger = logging.getLogger("moderation.test_request_id")
    logger.addHandler(handler)
    try:

        def view(request):  # type: ignore[no-untyped-def]
            logger.warning("claim refused")
            return HttpResponse("ok")

        middleware = RequestIdMiddleware(view)
        from_proxy = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="edge-7f3a.1"))
        assert from_proxy["X-Request-ID"] == "edge-7f3a.1" and "[edge-7f3a.1] claim refused" in lines[-1]
        own = middleware(RequestFactory().get("/"))
        assert re.fullmatch(r"[0-9a-f]{32}", own["X-Request-ID"]) and f"[{own['X-Request-ID']}]" in lines[-1]
        # A client's header is not written into the logs as it is (newlines would forge lines).
        forged = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="x\nERROR admin signed in"))
        assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"]) and "admin signed in" not in lines[-1]
        logger.warning("between requests")
        assert "[-] between requests" in lines[-1]
    finally:
        logger.removeHandler(handler)


def test_a_task_s_log_lines_carry_its_task_id():
    """In a worker the request id is the running task's id (Celery's own stack, as its tracer sets it), so a task's
    lines can be found from its id in the broker, the audit log or a failure message."""
    from celery._state import _task_stack

    from workbench.celery import app

    app.loader.import_default_modules()
    task = app.tasks["training.tasks.reap_stale_jobs"]
    record = logging.LogRecord("training.tasks", logging.INFO, __file__, 1, "reaped", (), None)
    task.push_request(id="0b7c-task-id")
    _task_stack.push(task)
    try:
        RequestIdFilter().filter(record)
    finally:
        _task_stack.pop()
        task.pop_request()
    assert record.request_id == "0b7c-task-id"  # type: ignore[attr-defined]


def test_every_page_answers_with_its_request_id():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-123")
    assert response["X-Request-ID"] == "lb-123"


def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WORKBENCH_", "LOG_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "DATABASE_URL": "postgres://workbench:pw@127.0.0.1:1/workbench",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        **extra,
    }


def test_workers_and_beat_log_in_the_configured_format_on_stdout(tmp_path):
    """Celery replaced the root logger's handlers with its own text format on stderr when a worker or beat set up
    its logging: LOG_FORMAT=json never reached their lines. This runs Celery's own log setup, as `celery worker`
    and `celery beat` do."""
    script = (
        "from workbench.celery import app; app.log.setup(loglevel='INFO');"
        "import logging; logging.getLogger('celery.worker').info('worker ready')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_production_env(LOG_FORMAT="json", WORKBENCH_VAR_DIR=str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"], line["request_id"]) == (
        "INFO",
        "celery.worker",
        "worker ready",
        "-",
    )
    text = subprocess.run(
        [sys.executable, "-c", script],
        env=_production_env(WORKBENCH_VAR_DIR=str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert re.fullmatch(r"\S+ \S+ INFO celery\.worker \[-\] worker ready", text.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_logs_each_request_with_its_id_and_stops_gracefully_on_sigterm(tmp_path):
    """The web service's server as compose and the image run it (workbench/gunicorn_conf.py): the access line goes
    through the application's JSON format on stdout with the request's id, and SIGTERM (docker stop, a rolling
    update) is a clean exit, not a kill."""
    import signal
    import time
    import urllib.request

    port = _free_port()
    env = _production_env(LOG_FORMAT="json", WORKBENCH_VAR_DIR=str(tmp_path), WEB_CONCURRENCY="1")
    env["SECRET_KEY"] = "test-" + "k" * 50
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:workbench.gunicorn_conf", "workbench.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "lb-42"})
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (http on loopback)
                    assert answer.headers["X-Request-ID"] == "lb-42"
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert access and '"GET /healthz HTTP/1.1" 200' in access[0]["message"], output
    assert access[0]["message"].endswith("request_id=lb-42")
    assert any(line["logger"] == "gunicorn.error" and "Shutting down" in line["message"] for line in lines), output
    assert {"gunicorn.error", "gunicorn.access"} <= {line["logger"] for line in lines}  # none in gunicorn's own format
    assert not [line for line in output.splitlines() if "[INFO]" in line], output
