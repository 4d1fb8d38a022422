"""`manage.py up` starts again a process that exited on its own (one worker killed for memory stopped the whole
workbench, the web server included), and stops everything only when one keeps exiting."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from workbench.management.commands.up import Restarts, exit_reason, supervise


def test_exit_reasons_are_said_in_words() -> None:
    assert exit_reason(3) == "with status 3"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL (out of memory?)"
    assert exit_reason(-signal.SIGTERM) == "killed by SIGTERM"


def test_restarts_are_limited_per_process_within_a_window() -> None:
    restarts = Restarts(limit=2, window_s=60)
    assert restarts.allow("worker-gpu", 0) and restarts.allow("worker-gpu", 10)
    assert not restarts.allow("worker-gpu", 20)  # the third exit within a minute
    assert restarts.allow("web", 20)  # counted per process
    assert restarts.allow("worker-gpu", 75)  # the first two have left the window


def test_a_killed_process_is_started_again_and_one_that_keeps_exiting_stops_everything(tmp_path: Path) -> None:
    started: dict[str, int] = {"worker-gpu": 0, "web": 0}
    said: list[str] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        started[name] += 1
        if name == "worker-gpu":  # runs until killed, like a worker
            return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])  # crashes at once, every time

    procs = {name: start(name) for name in started}
    procs["worker-gpu"].send_signal(signal.SIGKILL)  # the kernel's out-of-memory killer
    supervise(
        procs,
        start=start,
        stopping=lambda: False,
        say=said.append,
        logs=tmp_path,
        restarts=Restarts(limit=3, window_s=600),
        poll_s=0.05,
    )
    try:
        assert said[0].startswith("worker-gpu exited killed by SIGKILL (out of memory?); started again")
        assert started == {"worker-gpu": 2, "web": 4}  # web: the first start and three restarts
        assert procs["worker-gpu"].poll() is None  # the new worker runs
        assert (
            said[-1]
            == f"web exited with status 3, 4 times within 10 minutes: stopping everything; see {tmp_path}/web.log"
        )
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_nothing_is_started_again_once_up_is_stopping(tmp_path: Path) -> None:
    calls: list[str] = []
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(0)"])
    proc.wait()
    flags = iter([False, True, True, True])  # Ctrl-C arrives as the child exits
    supervise(
        {"beat": proc},
        start=lambda name: calls.append(name),  # type: ignore[arg-type,return-value]
        stopping=lambda: next(flags),
        say=calls.append,
        logs=tmp_path,
        poll_s=0.01,
    )
    assert calls == []


def _report(started_at, **kwargs) -> str:
    from io import StringIO

    from workbench.management.commands.up import Command

    out = StringIO()
    Command(stdout=out)._report_first_reviewable(started_at, **kwargs)
    return out.getvalue()


def test_the_first_reviewable_item_is_timed_by_when_it_was_created_not_when_up_looks(db) -> None:
    """`up` looks only once the demo videos are generated: it printed the time of that look (154 s on a fresh clone
    whose first item had been reviewable for a while), and on a second run the seconds the demo generation took."""
    from datetime import timedelta

    from django.utils import timezone

    from moderation.models import ReviewTask
    from tests.factories import ReviewTaskFactory

    started_at = timezone.now() - timedelta(seconds=200)
    task = ReviewTaskFactory()
    ReviewTask.objects.filter(pk=task.pk).update(created_at=started_at + timedelta(seconds=37))

    assert "First reviewable item after 37 s." in _report(started_at)
    later = _report(started_at + timedelta(seconds=300))
    assert "earlier run" in later and "First reviewable" not in later


def test_waiting_for_the_first_reviewable_item_ends_on_ctrl_c(db) -> None:
    """The wait (up to 10 minutes) ignored Ctrl-C: `up` neither stopped nor supervised its processes meanwhile."""
    import time

    from django.utils import timezone

    began = time.monotonic()
    assert _report(timezone.now(), stopping=lambda: True, wait_s=30) == ""
    assert time.monotonic() - began < 5
