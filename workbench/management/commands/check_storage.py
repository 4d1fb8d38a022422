"""`manage.py check_storage`: is media storage usable? (`up` runs it first; a compose or Kubernetes
service can run it before starting, so wrong credentials stop the start instead of failing uploads.)"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workbench.storage import StorageError, storage_check


class Command(BaseCommand):
    help = "Write, read back and delete a probe object in media storage; fail with a clear message if it cannot."

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            where = storage_check()
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Media storage OK: {where}.")
