"""The test database, copied from a migrated template instead of migrated again by every test process.

Migrating an empty database costs 100+ migrations (30-40 s on a quiet machine, minutes on a loaded one) and every
pytest process paid it: each xdist worker, each run of one test file. The first process to need a database of the
current migrations migrates its own as before, then saves a copy of it as a template database named after a hash of
every migration file (and Django's version); later processes, and its sibling workers waiting on the same lock, make
their database with ``CREATE DATABASE … TEMPLATE`` (a file copy: a second or two) and let Django's ``migrate`` find
nothing to do. A changed migration changes the hash, so a template is never used for other migrations than its own;
``--create-db`` migrates from scratch and saves a fresh template. The test database itself is still per process and
dropped at the end of its run.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

TEMPLATE_PREFIX = "wbtmpl_"


def migration_folders() -> dict[str, Path]:
    """Each installed app's migrations folder, by app label."""
    from django.apps import apps

    folders = {}
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.migrations")
        except ImportError:
            continue
        folders[config.label] = Path(next(iter(module.__path__)))
    return folders


def migrations_fingerprint(folders: dict[str, Path] | None = None) -> str:
    """A hash of the migration files (every installed app's unless ``folders`` is given) and of Django's version:
    what the template was migrated by."""
    import django

    digest = hashlib.sha256(django.get_version().encode())
    for label, folder in sorted((folders if folders is not None else migration_folders()).items()):
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{label}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class DatabaseTemplate:
    """The template of this run's migrations, and what this process does with it: ``clone`` (the template exists: the
    test database is made from it) or ``build`` (it does not: Django migrates the test database, which is then saved
    as the template). ``_lock`` is a connection to the maintenance database holding the template's advisory lock while
    this process builds it, so a sibling xdist worker waits for the template instead of migrating too."""

    test_name: str
    name: str
    lock_key: int
    action: str = ""
    run: str = ""
    _lock: Any = field(default=None, repr=False)

    @classmethod
    def for_this_run(cls) -> DatabaseTemplate:
        from django.db import connection

        fingerprint = migrations_fingerprint()
        return cls(
            test_name=connection.creation._get_test_db_name(),
            name=f"{TEMPLATE_PREFIX}{fingerprint[:20]}",
            lock_key=int(fingerprint[:15], 16),
        )

    def prepare(self, *, rebuild: bool, run: str) -> None:
        """Make the test database from the template, or take the lock to build the template. ``rebuild``
        (``--create-db``) builds it again unless this ``run`` (pytest-xdist's run id, shared by its workers) did."""
        admin = _maintenance_connection()
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [self.lock_key])
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(self.test_name)}")  # a crashed run's, by pid reuse
            cursor.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [self.name]
            )
            found = cursor.fetchone()
            self.run = run
            if found is not None and (not rebuild or found[0] == run):
                cursor.execute(f"CREATE DATABASE {_quote(self.test_name)} TEMPLATE {_quote(self.name)}")
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.lock_key])
                admin.close()
                self.action = "clone"
                return
        self.action, self._lock = "build", admin  # held until ``save`` or this process's end

    def save(self) -> None:
        """After Django migrated the test database it built: copy it to the template, drop older templates."""
        if self.action != "build":
            return
        from django.db import connections

        connections.close_all()  # CREATE DATABASE … TEMPLATE needs the source database without sessions
        try:
            with self._lock.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {_quote(self.name)}")
                cursor.execute(f"CREATE DATABASE {_quote(self.name)} TEMPLATE {_quote(self.test_name)}")
                cursor.execute(f"COMMENT ON DATABASE {_quote(self.name)} IS %s", [self.run])
                cursor.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                    [TEMPLATE_PREFIX + "%", self.name],
                )
                for (older,) in cursor.fetchall():
                    # Another run may be copying it right now (the database is in use): the next run drops it.
                    with contextlib.suppress(Exception):
                        cursor.execute(f"DROP DATABASE IF EXISTS {_quote(older)}")
        finally:
            self._lock.close()  # releases the advisory lock: waiting workers clone the template now
            self._lock = None

    def drop_test_database(self) -> None:
        from django.db import connections

        connections.close_all()
        admin = _maintenance_connection()
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {_quote(self.test_name)}")
        finally:
            admin.close()


def _maintenance_connection() -> Any:
    """An autocommit connection to the server's ``postgres`` database, as the test settings connect."""
    from django.db import connection

    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    admin = connection.get_new_connection(params)
    admin.autocommit = True
    return admin


def _quote(name: str) -> str:
    from django.db import connection

    return connection.ops.quote_name(name)
