"""`manage.py up`: the whole workbench on one machine, on the embedded default.

Migrates, creates the roles, policy and demo users, starts Celery workers (media+default;
infer+train with pool solo as on a GPU node), beat and the web server, then generates and
ingests the demo videos. Ctrl-C stops everything it started, the embedded services included.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone


def child_environment(*, debug: bool) -> dict[str, str]:
    """The environment of the web server and workers ``up`` starts: served like production (DEBUG off)
    unless ``debug``, with a real secret key: SECRET_KEY from the environment, else one generated once
    and kept in ``var/secret_key`` (so sessions survive a restart)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEBUG": "1" if debug else "0"}
    if not env.get("SECRET_KEY"):
        key_file = Path(settings.VAR_DIR) / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
        env["SECRET_KEY"] = key_file.read_text().strip()
    return env


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver")


def reachable_from_elsewhere(*, bind: str) -> bool:
    """Whether the site ``up`` serves on ``bind`` may be reached from other machines: bound to an address other than
    the loopback (``0.0.0.0``, a LAN address, a unix socket a proxy reads), or answering a host name other than the
    loopback ones (ALLOWED_HOSTS: a proxy in front of 127.0.0.1 passes a public site's requests on), or behind a
    TLS-terminating proxy (WORKBENCH_HTTPS)."""
    host = bind.rsplit(":", 1)[0] if ":" in bind and not bind.startswith("unix:") else bind
    local_bind = host in LOOPBACK_HOSTS or host.startswith("127.")
    hosts = [str(h).strip().lower() for h in settings.ALLOWED_HOSTS]
    local_hosts = all(h in LOOPBACK_HOSTS or h.startswith("127.") for h in hosts)
    return not (local_bind and local_hosts) or bool(getattr(settings, "WORKBENCH_HTTPS", False))


def demo_password(*, bind: str) -> str:
    """The demo users' password: the README's ``workbench-demo`` while the site is reachable from this machine only;
    else one made for this install, kept in ``var/demo_password`` (readable by its owner only) and printed at start.
    With the README's password, ``./run.sh --bind 0.0.0.0:8000`` (or a proxy in front of it) served a superuser
    ``admin`` whose password anyone could read."""
    from workbench.management.commands.bootstrap import DEMO_PASSWORD

    if not reachable_from_elsewhere(bind=bind):
        return DEMO_PASSWORD
    path = Path(settings.VAR_DIR) / "demo_password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(12))
    return path.read_text().strip()


def exit_reason(code: int) -> str:
    """A child's exit status in words: a signal by name (SIGKILL: what the kernel's out-of-memory killer sends)."""
    if code >= 0:
        return f"with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")


LOCK_NAME = "up.lock"
BIND_WAIT_S = 10.0  # how long a port held by a web server still stopping (a run just stopped or killed) is waited for


@contextlib.contextmanager
def instance_lock(var_dir: Path, *, bind: str) -> Iterator[None]:
    """Held while one ``up`` runs on ``var_dir``; a second one is refused with who holds it. Two on one ``var/``
    shared its PostgreSQL and Redis, ran a second beat (every periodic task twice), and the one that stopped first
    (its web server could not bind the port, so it gave up after 6 tries) stopped the embedded services under the
    other: every page of the first became a 500. An ``flock``: the kernel lets it go with its process, so a
    ``kill -9`` leaves no stale lock behind (the file itself stays, naming the last holder)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            pid, where = (holder + ["?", "?"])[:2]
            raise CommandError(
                f"The workbench is already running from this folder: `manage.py up` (pid {pid}) serves "
                f"http://{where}/ on {var_dir}. Use that one, or stop it first (Ctrl-C in its terminal, or "
                f"`kill {pid}`); a second copy needs its own WORKBENCH_VAR_DIR and --bind port."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {bind}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def bind_in_use(bind: str, *, wait_s: float = 0.0, say: Callable[[str], Any] = lambda _: None) -> str | None:
    """Why ``bind`` (``HOST:PORT``) cannot be served now, else None, having waited up to ``wait_s`` for it to be
    freed (the web server of a run just stopped or killed lets its requests finish first). Checked before anything
    starts: gunicorn failing to bind was retried 6 times, then ``up`` stopped everything, having printed "Open
    http://…/" over someone else's server."""
    if bind.startswith("unix:") or ":" not in bind:
        return None
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no obstacle
            try:
                s.bind((host, int(port)))
                return None
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    return (
                        f"Cannot serve on {bind}: {reason}. Another program (another checkout's `./run.sh`?) listens "
                        f"there: stop it, or choose a free port, `./run.sh --bind {host}:{int(port) + 1}`."
                    )
                if not waited:
                    say(f"{bind} is in use; waiting up to {wait_s:.0f} s for it to be freed…")
                    waited = True
        time.sleep(0.5)


def wait_until_serving(bind: str, *, stopping: Callable[[], bool], timeout_s: float = 600) -> float | None:
    """Seconds until the web server on ``bind`` answers an HTTP request (any status), None on Ctrl-C, after
    ``timeout_s`` or for a unix socket. ``up`` printed "Open http://…/" as soon as it had started gunicorn, which on
    a loaded 2-core machine answered a minute later: the browser sat on a blank page meanwhile."""
    if bind.startswith("unix:") or ":" not in bind:
        return None
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - where a wildcard bind answers
    began = time.monotonic()
    while not stopping() and time.monotonic() - began < timeout_s:
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return time.monotonic() - began
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
        finally:
            connection.close()
    return None


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when ``up`` dies, however it dies (``kill -9``
    of ``./run.sh``, a closed terminal): the workers, beat and web server it started were left running, holding
    the port, so the next ``./run.sh`` could not start its web server and stopped. None off Linux."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # up died before the line above: nobody would send it
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def start_child(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """A process of ``up``'s that ends when ``up`` does (``_die_with_parent``)."""
    return subprocess.Popen(command, preexec_fn=_die_with_parent(), **kwargs)  # noqa: PLW1509


WEB_FIRST_WAIT_S = 120.0  # the longest the workers and beat wait for the web server to answer before starting anyway


def start_web_first(
    procs: dict[str, subprocess.Popen[bytes]],
    *,
    names: list[str],
    start: Callable[[str], subprocess.Popen[bytes]],
    stopping: Callable[[], bool],
    wait: Callable[[Callable[[], bool]], float | None] | None,
    answering: Callable[[float], Any],
    say: Callable[[str], Any],
) -> None:
    """Start ``web`` alone, wait (``wait``) until it answers, exits, or ``stopping()``, then start the other
    ``names`` (workers, beat) unless stopping. On 2 cores the web server, two workers and beat all importing Django
    (and the demo videos rendering beside them) at once took the web server tens of seconds longer to answer; the
    workers have nothing to do before the demo videos are ingested, which also waits. ``wait`` gives up after its
    own timeout (the workers start anyway, and a thread keeps looking so the answer is still said); a web server
    that exits is left to the supervisor, which starts it again and says why. ``wait`` None (a unix socket, which
    nothing here can ask): all start at once."""
    began = time.monotonic()
    procs["web"] = start("web")
    web = procs["web"]
    seconds = wait(lambda: stopping() or web.poll() is not None) if wait is not None else None
    if seconds is not None:
        answering(seconds)
    elif wait is not None and not stopping() and web.poll() is None:
        say("The web server is not answering yet; starting the workers anyway (the next line says when it answers).")
        look = wait

        def keep_looking() -> None:
            if look(lambda: stopping() or web.poll() is not None) is not None:
                answering(time.monotonic() - began)

        threading.Thread(target=keep_looking, daemon=True).start()
    if stopping():
        return
    for name in names:
        if name != "web":
            procs[name] = start(name)
    say(f"Workers and beat started: {', '.join(n for n in names if n != 'web')}.")


@dataclass
class Restarts:
    """How often ``up`` starts again a process that exited on its own (a worker the kernel killed for memory, a
    crash): at most ``limit`` times within ``window_s`` seconds each, as a service manager would. Past that it keeps
    crashing, and ``up`` stops everything and says so, rather than restarting it for ever."""

    limit: int = 5
    window_s: float = 600.0
    times: dict[str, list[float]] = field(default_factory=dict)

    def allow(self, name: str, now: float) -> bool:
        recent = [t for t in self.times.get(name, []) if now - t < self.window_s]
        self.times[name] = recent
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        return True


def supervise(
    procs: dict[str, subprocess.Popen[bytes]],
    *,
    start: Callable[[str], subprocess.Popen[bytes]],
    stopping: Callable[[], bool],
    say: Callable[[str], Any],
    logs: Path,
    restarts: Restarts | None = None,
    poll_s: float = 0.5,
) -> None:
    """Watch ``up``'s processes until ``stopping()``: one that exits is started again (a long task in flight is
    acknowledged late and goes back to its queue; beat's sweeps and reapers take up the rest).
    It used to stop everything, so one worker killed for memory took the web server down with it. Returns when
    stopping, or when a process keeps exiting (``restarts``' limit), having said why."""
    restarts = restarts or Restarts()
    while not stopping():
        for name, proc in list(procs.items()):
            code = proc.poll()
            if code is None or stopping():
                continue
            log = logs / f"{name}.log"
            if not restarts.allow(name, time.monotonic()):
                minutes = restarts.window_s / 60
                say(
                    f"{name} exited {exit_reason(code)}, {restarts.limit + 1} times within {minutes:.0f} minutes: "
                    f"stopping everything; see {log}"
                )
                return
            say(f"{name} exited {exit_reason(code)}; started again (see {log})")
            procs[name] = start(name)
        time.sleep(poll_s)


class Command(BaseCommand):
    help = "Run the workbench: embedded services, workers, web server and demo content."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--no-demo", action="store_true", help="skip generating the demo videos")
        parser.add_argument(
            "--debug", action="store_true", help="development mode: DEBUG on (tracebacks in the browser)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        started_at = timezone.now()
        # Media storage first: wrong credentials or a missing bucket stop `up` before anything starts.
        call_command("check_storage")
        with instance_lock(Path(settings.VAR_DIR), bind=opts["bind"]):
            problem = bind_in_use(opts["bind"], wait_s=BIND_WAIT_S, say=self.stdout.write)
            if problem:
                raise CommandError(problem)
            from workbench.embedded import start_configured, stop_configured

            # Settings never start them; nothing to do where DATABASE_URL / REDIS_URL are set.
            for line in start_configured():
                self.stdout.write(f"Embedded {line}.")
            try:
                self._run(started_at, **opts)
            except KeyboardInterrupt:  # Ctrl-C before the processes started (while migrating): no traceback
                self.stdout.write("Interrupted.")
            finally:
                # Also when a step before the workers failed or was interrupted: the embedded PostgreSQL and
                # Redis were left running with nothing using them.
                stop_configured()
                self.stdout.write("Stopped.")

    def _run(self, started_at: datetime, **opts: Any) -> None:
        self.stdout.write("Migrating the database (on a new var/: a few minutes)…")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("bootstrap", demo_users=True, demo_password=demo_password(bind=opts["bind"]))
        call_command("collectstatic", interactive=False, verbosity=0)

        py = sys.executable
        celery = [py, "-m", "celery", "-A", "workbench"]
        logs = Path(settings.VAR_DIR) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        commands = {
            "worker-media": [
                *celery,
                "worker",
                "-Q",
                "media,default",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "-n",
                "media@%h",
                "--loglevel",
                "INFO",
            ],
            "worker-gpu": [
                *celery,
                "worker",
                "-Q",
                "infer,train",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "-n",
                "gpu@%h",
                "--loglevel",
                "INFO",
            ],
            "beat": [
                *celery,
                "beat",
                "--schedule",
                str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
                "--loglevel",
                "INFO",
            ],
            "web": [
                py,
                "-m",
                "gunicorn",
                "-c",
                "python:workbench.gunicorn_conf",  # production's config (timeouts, access log with request ids)
                "workbench.wsgi:application",
                "--bind",
                opts["bind"],
                "--workers",
                "2",
            ],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        env = child_environment(debug=opts["debug"])
        if "PROMETHEUS_MULTIPROC_DIR" not in env:
            # Web and worker processes write their metrics here and /metrics adds them up; emptied
            # at each start (the files of dead processes would otherwise count forever).
            prom = Path(settings.VAR_DIR) / "prometheus"
            shutil.rmtree(prom, ignore_errors=True)
            prom.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)

        def start(name: str) -> subprocess.Popen[bytes]:
            log = (logs / f"{name}.log").open("ab")
            return start_child(commands[name], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=settings.BASE_DIR)

        mode = (
            "development mode (DEBUG on)" if opts["debug"] else "production mode (DEBUG off; --debug for development)"
        )
        self.stdout.write(f"Serving in {mode}; logs in {logs}.")
        stopping = False
        generating = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True
            if generating:  # Ctrl-C while the demo videos render: stop now, not after all of them
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"Web server starting on http://{opts['bind']}/ (the next line says when it answers).")
        try:
            start_web_first(
                procs,
                names=list(commands),
                start=start,
                stopping=lambda: stopping,
                answering=lambda seconds: self.stdout.write(
                    self.style.SUCCESS(
                        f"Web server answering after {seconds:.0f} s: open http://{opts['bind']}/ and sign in as "
                        "one of the demo users."
                    )
                ),
                wait=None
                if opts["bind"].startswith("unix:") or ":" not in opts["bind"]
                else lambda done: wait_until_serving(opts["bind"], stopping=done, timeout_s=WEB_FIRST_WAIT_S),
                say=self.stdout.write,
            )
            if not opts["no_demo"] and not stopping:
                generating = True
                call_command("generate_demo")
                generating = False
                self._report_first_reviewable(started_at, stopping=lambda: stopping)
            supervise(procs, start=start, stopping=lambda: stopping, say=self.stderr.write, logs=logs)
        except KeyboardInterrupt:
            pass
        finally:
            generating = False
            self.stdout.write("Stopping…")
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def _report_first_reviewable(
        self, started_at: datetime, *, stopping: Callable[[], bool] = lambda: False, wait_s: float = 600
    ) -> None:
        """Says how long after ``started_at`` the first review item of this run was created: its own creation time,
        not when this looks (only after the demo videos are generated, by then often long after), and says so
        when the items came from an earlier run on this ``var/``. Gives up on Ctrl-C or after ``wait_s``, so a
        run whose workers never decide anything still stops on Ctrl-C and gets supervised."""
        from django.apps import apps

        task_model = apps.get_model("moderation", "ReviewTask")
        if task_model.objects.filter(created_at__lt=started_at).exists():
            self.stdout.write(self.style.SUCCESS("Review items of an earlier run on this var/ are in the queues."))
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not stopping():
            first = (
                task_model.objects.filter(created_at__gte=started_at)
                .order_by("created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if first is not None:
                seconds = (first - started_at).total_seconds()
                self.stdout.write(self.style.SUCCESS(f"First reviewable item after {seconds:.0f} s."))
                return
            time.sleep(1)
