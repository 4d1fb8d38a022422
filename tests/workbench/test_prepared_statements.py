"""The review claim runs as a server-side prepared statement (``workbench/db.py``): the visibility rule compiled
into its four legs cost ~20 ms of planning per claim for ~1 ms of work. Prepared once per connection, it returns
the same items; with prepared statements switched off (a transaction-mode pooler) it still claims."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from moderation.review.models import ReviewQueue
from moderation.review.services import review_claim_next
from tests.factories import UserFactory
from tests.moderation.review.seeding import seed_pending_tasks

pytestmark = pytest.mark.django_db


def _claims_prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%WITH allowed AS%%'")
        return int(cursor.fetchone()[0])


def test_the_claim_is_prepared_once_per_connection_and_claims_the_same_items(policy_version) -> None:  # type: ignore[no-untyped-def]
    queue = ReviewQueue.objects.create(name="Prepared", slug="prepared")
    seed_pending_tasks(n=6, queue=queue, policy_version=policy_version)
    moderator = UserFactory(role="moderator")
    before = _claims_prepared()

    first = review_claim_next(user=moderator, queue=queue)
    again = review_claim_next(user=moderator, queue=queue)  # the own open claim comes back first
    other = review_claim_next(user=moderator, queue=queue, exclude_ids=[first.pk])  # a typed array parameter
    assert first is not None and again is not None and other is not None
    assert again.pk == first.pk and other.pk != first.pk
    assert other.status == "claimed" and other.claimed_by_id == moderator.pk
    # Exactly one new statement per parameter-type shape (the empty and the filled ``exclude``), reused after.
    prepared = _claims_prepared()
    assert 1 <= prepared - before <= 2
    review_claim_next(user=moderator, queue=queue, exclude_ids=[first.pk, other.pk])
    assert _claims_prepared() == prepared


def test_with_prepared_statements_off_the_claim_still_claims(policy_version) -> None:  # type: ignore[no-untyped-def]
    queue = ReviewQueue.objects.create(name="Unprepared", slug="unprepared")
    seed_pending_tasks(n=2, queue=queue, policy_version=policy_version)
    moderator = UserFactory(role="moderator")
    connection.ensure_connection()
    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None  # what DATABASE_PREPARED_STATEMENTS=false sets
    try:
        before = _claims_prepared()
        task = review_claim_next(user=moderator, queue=queue)
        assert task is not None and task.claimed_by_id == moderator.pk
        assert _claims_prepared() == before
    finally:
        connection.connection.prepare_threshold = threshold


def test_prepared_statements_use_their_generic_plan_from_the_first_run() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"


@pytest.mark.parametrize(("value", "expected"), [("", "2147483647"), ("false", "None")])
def test_the_setting_switches_prepared_statements(value: str, expected: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "workbench.settings"}
    env.pop("DATABASE_PREPARED_STATEMENTS", None)
    if value:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected


def test_the_claims_visibility_clause_is_compiled_once_per_user_and_a_new_role_still_counts(policy_version) -> None:  # type: ignore[no-untyped-def]
    """The rule compiled into the claim (~8 ms of Python per claim) is kept per user id; whether the user sees
    every video is read on every claim, so someone made an admin claims a restricted video's item at once."""
    from django.contrib.auth.models import Group, User

    from moderation.review import selectors, services
    from tests.factories import ReviewTaskFactory, TagTaskFactory

    experts = ReviewQueue.objects.create(slug="experts-only", name="Experts only")
    experts.allowed_groups.add(Group.objects.create(name="experts-only"))
    hidden = ReviewTaskFactory(decision__policy_version=policy_version, queue=experts).decision
    item = TagTaskFactory(decision=hidden)
    moderator = UserFactory(role="moderator")

    selectors._open_video_clause_for.cache_clear()
    assert services.review_claim_next(user=moderator, queue=item.queue) is None
    assert services.review_claim_next(user=moderator, queue=item.queue) is None
    info = selectors._open_video_clause_for.cache_info()
    assert (info.misses, info.hits) == (1, 1)

    moderator.groups.add(Group.objects.get(name="admin"))
    promoted = User.objects.get(pk=moderator.pk)  # the next request's user: permissions read afresh
    claimed = services.review_claim_next(user=promoted, queue=item.queue)
    assert claimed is not None and claimed.pk == item.pk


def _rule_statements_prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%/* prepared */%%'")
        return int(cursor.fetchone()[0])


def test_a_screens_statement_that_carries_the_visibility_rule_is_prepared_once_per_connection() -> None:
    """The ORM's statements with the rule (``PREPARE_MARK`` in its SQL) run prepared (``prepare_marked``): the
    same rows, one prepared statement per statement text on the connection, reused by every user; a named cursor
    (``QuerySet.iterator()``) and prepared statements switched off run them as before."""
    from django.contrib.auth.models import Group

    from moderation.media.models import Video
    from moderation.media.selectors import videos_open_to
    from tests.factories import DecidedVideoFactory, ReviewTaskFactory, VideoFactory

    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    restricted.allowed_groups.add(experts)
    hidden = ReviewTaskFactory(queue=restricted).decision.video
    moderator, colleague, expert = UserFactory(role="moderator"), UserFactory(role="moderator"), UserFactory()
    expert.groups.add(experts)
    shown = {DecidedVideoFactory().pk, DecidedVideoFactory().pk}
    mine = VideoFactory(created_by=moderator).pk

    def seen(user) -> set[int]:  # type: ignore[no-untyped-def]
        return set(videos_open_to(user=user).order_by("pk").values_list("pk", flat=True))

    before = _rule_statements_prepared()
    assert seen(moderator) == shown | {mine}
    assert _rule_statements_prepared() == before + 1
    assert seen(colleague) == shown and seen(expert) == shown | {hidden.pk}  # other users: the same statement
    with CaptureQueriesContext(connection) as logged:
        assert seen(moderator) == shown | {mine}
    assert _rule_statements_prepared() == before + 1
    # The query log shows the statement with its values (psycopg keeps no text of a prepared run).
    assert "/* prepared */" in logged.captured_queries[0]["sql"]
    assert f"= {moderator.pk}" in logged.captured_queries[0]["sql"] and "$1" not in logged.captured_queries[0]["sql"]
    rows = videos_open_to(user=moderator, qs=Video.objects.order_by("pk")).iterator(chunk_size=1)
    assert {v.pk for v in rows} == shown | {mine}

    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None  # what DATABASE_PREPARED_STATEMENTS=false sets
    try:
        assert seen(moderator) == shown | {mine} and seen(expert) == shown | {hidden.pk}
        assert not videos_open_to(user=colleague, qs=Video.objects.filter(pk=hidden.pk)).exists()
        assert _rule_statements_prepared() == before + 1
    finally:
        connection.connection.prepare_threshold = threshold


def test_a_wrapper_a_caller_adds_is_the_one_removed_after_its_block() -> None:
    """``prepare_marked`` sits first among a connection's execute wrappers, so a ``connection.execute_wrapper``
    block (which removes the last one at its end) never takes it away."""
    from workbench.db import install_prepare_marked, prepare_marked

    seen: list[str] = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    connection.ensure_connection()
    assert connection.execute_wrappers == [prepare_marked]  # installed when the connection was made
    connection.execute_wrappers.remove(prepare_marked)
    with connection.execute_wrapper(spy), connection.cursor() as cursor:
        install_prepare_marked(connection=connection)  # a connection made inside such a block
        cursor.execute("SELECT 1")
    assert seen == ["SELECT 1"]
    assert connection.execute_wrappers == [prepare_marked]
