"""Migration 0033 (integration tokens expire): integrations made before it get an expiry one lifetime from the day it
runs, so their platforms keep working instead of being cut off (or the NOT NULL step failing on their rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from moderation.integrations.services import integration_authenticate, token_hash

pytestmark = pytest.mark.django_db

BEFORE = ("moderation", "0032_distinct_embedding_vectors")
MIGRATION = ("moderation", "0033_integration_token_expiry")


def test_integrations_made_before_0033_get_an_expiry_one_lifetime_away(settings):
    """0033 undone and done again on this database, inside the test's transaction (PostgreSQL's DDL is
    transactional: the rollback at the end restores the schema): rows written as they were before it, without the
    column, come out of it with an expiry and their tokens still work."""
    settings.INTEGRATION_TOKEN_LIFETIME_DAYS = 200
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration(*MIGRATION)
    before = executor.loader.project_state(BEFORE)
    after = executor.loader.project_state(MIGRATION)
    with connection.schema_editor(atomic=True) as editor:
        migration.unapply(after, editor)
    columns = [
        c.name for c in connection.introspection.get_table_description(connection.cursor(), "moderation_integration")
    ]
    assert "token_expires_at" not in columns  # the table as it was before 0033

    Old = before.apps.get_model("moderation", "Integration")
    Old.objects.create(name="made-before-0033", token_hash=token_hash("old-token"), token_prefix="old-toke")
    Old.objects.create(
        name="switched-off-before-0033", token_hash=token_hash("other"), token_prefix="other", is_active=False
    )

    with connection.schema_editor(atomic=True) as editor:
        migration.apply(before, editor)

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, token_expires_at FROM moderation_integration ORDER BY name")
        expiries = dict(cursor.fetchall())
    assert set(expiries) == {"made-before-0033", "switched-off-before-0033"}
    for name, expires_at in expiries.items():
        assert expires_at is not None, name
        assert timedelta(days=199) < expires_at - timezone.now() <= timedelta(days=200), name
    # The platform's token made before the migration is accepted after it.
    assert integration_authenticate(token="old-token").name == "made-before-0033"
