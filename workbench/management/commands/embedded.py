"""`manage.py embedded start|stop|status`: the embedded PostgreSQL and Redis, started on purpose.

Importing the settings never starts them; `manage.py up` and the test bootstrap call the same
``start_configured``. Nothing to do where DATABASE_URL / REDIS_URL point elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from workbench.embedded import postgres_address, redis_socket_alive, start_configured, stop_configured


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL and Redis (the zero-configuration default)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "start":
            for line in start_configured() or ["nothing to start: DATABASE_URL and REDIS_URL are set"]:
                self.stdout.write(f"running: {line}")
        elif opts["action"] == "stop":
            stop_configured()
            self.stdout.write("stopped")
        else:
            pg, redis = settings.EMBEDDED_POSTGRES_DIR, settings.EMBEDDED_REDIS_DIR
            if pg is not None:
                up = postgres_address(Path(pg)) is not None
                self.stdout.write(f"PostgreSQL ({Path(pg) / 'pgdata'}): {'running' if up else 'stopped'}")
            if redis is not None:
                up = redis_socket_alive(Path(redis) / "redis.sock")
                self.stdout.write(f"Redis ({Path(redis) / 'redis.sock'}): {'running' if up else 'stopped'}")
