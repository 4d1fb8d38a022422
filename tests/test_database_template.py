"""The test database is copied from a template migrated once (tests/database_template.py): the template must be
the one of these migrations, and a changed, added or renamed migration must name another template."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.database_template import DatabaseTemplate, migrations_fingerprint


def test_a_changed_added_or_renamed_migration_names_another_template(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial.py").write_text("operations = []\n")
    first = migrations_fingerprint({"moderation": folder})
    assert migrations_fingerprint({"moderation": folder}) == first  # the same files: the same template

    (folder / "0001_initial.py").write_text("operations = ['changed']\n")
    changed = migrations_fingerprint({"moderation": folder})
    (folder / "0002_more.py").write_text("operations = []\n")
    added = migrations_fingerprint({"moderation": folder})
    (folder / "0002_more.py").rename(folder / "0002_renamed.py")
    renamed = migrations_fingerprint({"moderation": folder})
    other_app = migrations_fingerprint({"training": folder})

    assert len({first, changed, added, renamed, other_app}) == 5


@pytest.mark.django_db
def test_this_runs_database_came_from_the_template_of_its_migrations(request: pytest.FixtureRequest) -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    template = request.getfixturevalue("_database_template")
    if template is None:
        pytest.skip("--reuse-db or --no-migrations: pytest-django makes the database")
    assert template.name == DatabaseTemplate.for_this_run().name
    assert template.test_name == connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template.name])
        assert cursor.fetchone() is not None
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []  # nothing left for `migrate` to do
