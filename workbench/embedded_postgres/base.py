"""The embedded PostgreSQL's backend: see ``workbench/embedded_postgres/__init__.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from workbench.embedded import postgres_address

NOT_RUNNING = (
    "The embedded PostgreSQL ({pgdata}) is not running. Start it with `python manage.py embedded start` "
    "(`python manage.py up` starts it too), or set DATABASE_URL to a PostgreSQL server with pgvector."
)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        data_dir = Path(settings.EMBEDDED_POSTGRES_DIR or settings.VAR_DIR)
        address = postgres_address(data_dir)
        if address is None:
            raise ImproperlyConfigured(NOT_RUNNING.format(pgdata=data_dir / "pgdata"))
        params["host"], params["port"] = address
        self.settings_dict["HOST"], self.settings_dict["PORT"] = address  # for dbshell and messages
        return params
