"""`manage.py up` starts the web server alone and the workers and beat once it answers.

All four processes importing Django at once on 2 cores (with the demo videos rendering beside them) kept the web
server from answering for tens of seconds longer than it took alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from workbench.management.commands.up import start_web_first

NAMES = ["worker-media", "worker-gpu", "beat", "web"]


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _run(
    *, answer: float | None, stop_during_wait: bool = False, web_exits: bool = False, unix_socket: bool = False
) -> tuple[list[str], list[str], dict[str, subprocess.Popen[bytes]]]:
    events: list[str] = []
    said: list[str] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = [False]

    def start(name: str) -> subprocess.Popen[bytes]:
        events.append(f"start {name}")
        if name == "web" and web_exits:
            proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
            proc.wait()
            return proc
        return _sleeper()

    def wait(done: Callable[[], bool]) -> float | None:
        events.append("wait for web")
        if stop_during_wait:
            stopping[0] = True
        if done():  # Ctrl-C, or the web server exited
            return None
        return answer

    try:
        start_web_first(
            procs,
            names=NAMES,
            start=start,
            stopping=lambda: stopping[0],
            wait=None if unix_socket else wait,
            answering=lambda seconds: said.append(f"answering after {seconds:.0f} s"),
            say=said.append,
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return events, said, procs


def test_the_workers_and_beat_start_once_the_web_server_answers() -> None:
    events, said, procs = _run(answer=12.0)

    assert events == ["start web", "wait for web", "start worker-media", "start worker-gpu", "start beat"]
    assert said[0] == "answering after 12 s"
    assert set(procs) == set(NAMES)


def test_ctrl_c_while_the_web_server_starts_starts_nothing_else() -> None:
    events, said, procs = _run(answer=None, stop_during_wait=True)

    assert events == ["start web", "wait for web"]
    assert list(procs) == ["web"] and said == []


def test_a_web_server_that_exits_or_never_answers_does_not_keep_the_workers_from_starting() -> None:
    events, said, procs = _run(answer=None, web_exits=True)  # the supervisor starts it again and says why
    assert events[-3:] == ["start worker-media", "start worker-gpu", "start beat"]
    assert set(procs) == set(NAMES)

    events, said, procs = _run(answer=None)  # still starting after the wait's limit: the workers start anyway
    # (a thread goes on waiting, to say when it answers)
    assert [e for e in events if e.startswith("start")][-3:] == ["start worker-media", "start worker-gpu", "start beat"]
    assert said[0].startswith("The web server is not answering yet; starting the workers anyway")


def test_on_a_unix_socket_everything_starts_at_once_without_a_word_about_waiting() -> None:
    events, said, procs = _run(answer=None, unix_socket=True)

    assert events == ["start web", "start worker-media", "start worker-gpu", "start beat"]
    assert said == ["Workers and beat started: worker-media, worker-gpu, beat."]
