"""`manage.py up` as a new operator meets it: a second copy, a port someone else serves, a `kill -9` of `./run.sh`,
Ctrl-C before the processes start. Each used to leave processes running or stop another run's database."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from workbench import embedded
from workbench.embedded import _pid_alive
from workbench.management.commands import up
from workbench.management.commands.up import bind_in_use, instance_lock

_HOLD_LOCK = """
import sys, time
from pathlib import Path
from workbench.management.commands.up import instance_lock
with instance_lock(Path(sys.argv[1]), bind="127.0.0.1:8731"):
    print("held", flush=True)
    time.sleep(120)
"""


def _no_start(monkeypatch: Any) -> list[str]:
    started: list[str] = []
    monkeypatch.setattr(embedded, "start_configured", lambda *a, **k: started.append("embedded") or [])
    return started


def test_a_second_up_on_the_same_var_is_refused_and_a_killed_holder_leaves_no_stale_lock(
    tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    """Two `./run.sh` on one var/: the second ran a second beat and workers on the first's database, and when its
    web server could not bind the port it stopped the embedded PostgreSQL and Redis under the first (every page a
    500). Now it is refused before it starts anything, saying which process serves where."""
    settings.VAR_DIR = tmp_path
    started = _no_start(monkeypatch)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(CommandError) as refused:
            call_command("up", "--no-demo", "--bind", "127.0.0.1:8732", stdout=StringIO())
        said = str(refused.value)
        assert f"already running from this folder: `manage.py up` (pid {holder.pid}) serves" in said
        assert "http://127.0.0.1:8731/" in said and f"kill {holder.pid}" in said and "WORKBENCH_VAR_DIR" in said
        assert started == []
    finally:
        holder.send_signal(signal.SIGKILL)  # as `kill -9` of ./run.sh
        holder.wait()
    with instance_lock(tmp_path, bind="127.0.0.1:8000"):  # the kernel let the lock go with its holder
        assert (tmp_path / "up.lock").read_text().split() == [str(__import__("os").getpid()), "127.0.0.1:8000"]


def test_a_port_another_program_serves_is_refused_before_anything_starts(
    tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    """gunicorn failing to bind was started again 6 times, then `up` stopped everything, having printed
    "Open http://…/" over the other program's server."""
    settings.VAR_DIR = tmp_path
    started = _no_start(monkeypatch)
    monkeypatch.setattr(up, "BIND_WAIT_S", 0.0)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(CommandError) as refused:
            call_command("up", "--no-demo", "--bind", f"127.0.0.1:{port}", stdout=StringIO())
        assert f"Cannot serve on 127.0.0.1:{port}" in str(refused.value)
        assert f"./run.sh --bind 127.0.0.1:{port + 1}" in str(refused.value)
        assert started == []
        said: list[str] = []
        assert bind_in_use(f"127.0.0.1:{port}", wait_s=0.6, say=said.append) is not None
        assert said == [f"127.0.0.1:{port} is in use; waiting up to 1 s for it to be freed…"]
    assert bind_in_use(f"127.0.0.1:{port}") is None  # free again
    assert bind_in_use("unix:/tmp/wb.sock") is None


_PARENT = """
import sys, time
from workbench.management.commands.up import start_child
child = start_child([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def test_the_processes_up_started_end_when_up_is_killed() -> None:
    """A `kill -9` of ./run.sh left its workers, beat and web server running (the web server holding the port), so
    the next ./run.sh could not serve and stopped, and two beats ran meanwhile."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _pid_alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child), "a process up started outlived it"


def test_ctrl_c_before_the_processes_start_stops_the_embedded_services(
    tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    """Ctrl-C while migrating (minutes on a new var/) ended `up` with a traceback and left the embedded PostgreSQL
    and Redis it had just started running."""
    settings.VAR_DIR = tmp_path
    calls: list[str] = []
    monkeypatch.setattr(embedded, "start_configured", lambda: calls.append("start") or ["PostgreSQL in x"])
    monkeypatch.setattr(embedded, "stop_configured", lambda: calls.append("stop"))

    def interrupted(self: Any, started_at: Any, **opts: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(up.Command, "_run", interrupted)
    out = StringIO()
    call_command("up", "--no-demo", "--bind", "127.0.0.1:0", stdout=out)
    assert calls == ["start", "stop"]
    assert "Embedded PostgreSQL in x." in out.getvalue() and "Interrupted." in out.getvalue()


def test_gunicorns_control_socket_is_this_nodes_not_one_for_the_whole_machine(settings: Any) -> None:
    """gunicorn 23+ opens a control socket, by default `$HOME/.gunicorn/gunicorn.ctl`: every checkout's `./run.sh` on
    a machine took it from the last one started, and the first to stop unlinked the running one's."""
    import importlib

    from workbench import gunicorn_conf

    importlib.reload(gunicorn_conf)
    assert gunicorn_conf.control_socket == str(settings.VAR_DIR / "gunicorn.ctl")


def test_up_says_when_its_web_server_answers_not_when_it_was_started() -> None:
    """ "Open http://…/" was printed as gunicorn started; on a loaded machine it answered a minute later."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from workbench.management.commands.up import wait_until_serving

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert wait_until_serving(f"127.0.0.1:{port}", stopping=lambda: False, timeout_s=1) is None  # nobody answers
    assert wait_until_serving(f"127.0.0.1:{port}", stopping=lambda: True) is None  # Ctrl-C ends the wait

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)  # any answer: the server is up
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Answer)
    later = threading.Timer(1.0, server.serve_forever)
    later.start()
    try:
        seconds = wait_until_serving(f"127.0.0.1:{port}", stopping=lambda: False, timeout_s=20)
        assert seconds is not None and 0.9 <= seconds < 15
    finally:
        server.shutdown()
        server.server_close()
        later.join()
