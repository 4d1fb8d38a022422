"""What lets the suite run on pytest-xdist workers (``./test.sh`` runs ``-n auto``): the one Label Studio of a run is
started by the controller and awaited by a worker through the folder they share (tests/conftest.py,
tests/labelstudio_server.py). Each worker's own Redis and media folder: tests/test_settings.py."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.labelstudio_server import ERROR_FILE, PID_FILE, STATE_FILE, TOKEN, wait_ready_elsewhere


@pytest.fixture
def answering() -> Iterator[str]:
    """A loopback server that answers Label Studio's project list to the admin's token only."""

    class Projects(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            ok = self.path == "/api/projects" and self.headers.get("Authorization") == f"Token {TOKEN}"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Projects)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _announce(state_dir: Path, url: str) -> Path:
    log = state_dir / "server.log"
    log.write_text("Applying migrations... disk full\n")
    (state_dir / STATE_FILE).write_text(json.dumps({"url": url, "log": str(log)}))
    return log


def test_a_worker_gets_the_url_of_the_label_studio_its_controller_started(tmp_path: Path, answering: str) -> None:
    _announce(tmp_path, answering)
    running = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / PID_FILE).write_text(str(running.pid))
        assert wait_ready_elsewhere(tmp_path, timeout=30) == answering
    finally:
        running.kill()
        running.wait()


def test_a_worker_is_told_at_once_why_the_controllers_label_studio_is_not_there(tmp_path: Path) -> None:
    """A failed start, a server gone, or none announced: a failure with the server's log, not a ten-minute wait."""
    with pytest.raises(RuntimeError, match="Label Studio was not started for this run"):
        wait_ready_elsewhere(tmp_path, timeout=30, announced_within=0.3)

    closed = "http://127.0.0.1:9"  # discard: nothing answers there
    _announce(tmp_path, closed)
    (tmp_path / ERROR_FILE).write_text("CalledProcessError(1, ['label-studio', 'version'])")
    with pytest.raises(RuntimeError, match=r"could not be started: CalledProcessError.*\n.*disk full"):
        wait_ready_elsewhere(tmp_path, timeout=30)

    (tmp_path / ERROR_FILE).unlink()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / PID_FILE).write_text(str(gone.pid))
    with pytest.raises(RuntimeError, match=r"Label Studio exited\n.*disk full"):
        wait_ready_elsewhere(tmp_path, timeout=30)

    (tmp_path / PID_FILE).unlink()  # launching still (no pid yet) and never answering: until the timeout
    with pytest.raises(RuntimeError, match=r"did not answer within 1 s\n.*disk full"):
        wait_ready_elsewhere(tmp_path, timeout=1)
