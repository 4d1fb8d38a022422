"""Real Celery worker processes for the tests that kill or limit one: a `celery worker --pool solo` on one queue, run
against the test database and Redis, its output in a log file the assertion messages quote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The test database as a DATABASE_URL a worker process reads."""
    db = connection.settings_dict
    host = db.get("HOST") or "localhost"
    if host.startswith("/"):  # a Unix socket folder: libpq takes it as the host query parameter
        return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@/{db['NAME']}?host={host}&port={db.get('PORT') or 5432}"
    return f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def solo_worker(queue: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """A solo worker on ``queue`` with the test settings, database, Redis, media and training folders, plus ``env``."""
    return _worker(queue, log, "solo", env)


def prefork_worker(queue: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """A prefork worker with one child (the media workers' pool: Celery enforces the limits), as ``solo_worker``."""
    return _worker(queue, log, "prefork", env)


def _worker(queue: str, log: Path, pool: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings_test",
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TRAINING_OUTPUT_DIR": str(settings.TRAINING_OUTPUT_DIR),
        **env,
    }
    cmd = [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", queue, "--pool", pool,
           "--concurrency", "1", "--without-mingle", "--without-gossip", "-l", "INFO"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, log: Path) -> None:
    """Poll ``predicate`` until it holds; past ``timeout`` fail naming ``what``, with the worker log's end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker these helpers started: a warm shutdown, killed when it takes more than 30 s."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
