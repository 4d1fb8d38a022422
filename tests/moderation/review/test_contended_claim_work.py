"""The claim's commit and plan.

Its own transaction commits without waiting for the WAL flush; inside a caller's transaction the caller's durability
holds (``moderation.review.services._CLAIM_SQL``). Its plan walks the claim index in every leg."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection, transaction

from moderation.review import services
from moderation.review.services import review_claim_next


@pytest.mark.django_db(transaction=True)
def test_a_claim_on_its_own_commits_without_waiting_for_the_disk_and_leaves_the_session_as_it_was(make_task, make_user):
    make_task()
    user = make_user("moderator")
    seen: list[dict[str, Any]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "commit_async" in sql:
            seen.append(dict(params))
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")  # the test database turns it off for speed (tests/conftest.py)
    try:
        with connection.execute_wrapper(capture):
            task = review_claim_next(user=user)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            after = cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO DEFAULT")
    assert task is not None
    assert [p["commit_async"] for p in seen] == [True]
    assert after == "on"  # set for the claim's own transaction only


@pytest.mark.django_db
def test_the_claim_statement_turns_off_the_flush_wait_for_its_own_transaction(make_task, make_user, monkeypatch):
    make_task()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")
    monkeypatch.setattr(services, "_claim_commits_alone", lambda: True)
    assert review_claim_next(user=make_user("moderator")) is not None
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"


@pytest.mark.django_db
def test_a_claim_inside_a_callers_transaction_keeps_the_callers_durable_commit(make_task, make_user):
    make_task()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")
    with transaction.atomic():
        assert review_claim_next(user=make_user("moderator")) is not None
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db
def test_the_claims_generic_plan_walks_the_claim_index_not_a_sort_of_the_queue(policy_version, make_user):
    """The plan the prepared statement keeps (generic) walks ``task_claim_order`` in the lapsed, pending and skipped
    legs (the reviewer's own claim, by ``claimed_by``): never a sequential scan and sort of the whole queue (3k
    items), as a rewrite of the rules into joins once planned on every claim."""
    from moderation.review import selectors
    from moderation.review.models import ReviewQueue
    from tests.moderation.review.seeding import seed_pending_tasks

    queue = ReviewQueue.objects.create(name="Plan", slug="plan")
    seed_pending_tasks(n=3000, queue=queue, policy_version=policy_version)
    user = make_user("moderator")
    open_video, _ = selectors.review_open_video_clause(user=user)
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        names.append(match.group(1)) if match.group(1) not in names else None
        return f"${names.index(match.group(1)) + 1}"

    sql = re.sub(r"%\((\w+)\)s", positional, services._claim_sql(queue=queue, open_video=open_video))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE moderation_reviewtask")
    # The simple query protocol: its $n stay the generic plan's placeholders, not parameters this call must send.
    result = connection.connection.pgconn.exec_(f"EXPLAIN (GENERIC_PLAN, COSTS OFF) {sql}".replace("%%", "%").encode())
    plan = "\n".join(result.get_value(i, 0).decode() for i in range(result.ntuples))
    # The legs' own walk (``t``, ``t_1``, ``t_2``); the rules' subplans may scan small tables as the test database's
    # statistics make them (a hashed subplan reads a 3k table once).
    assert not re.search(r"Seq Scan on moderation_reviewtask t(_\d+)?$", plan, re.MULTILINE), plan
    assert plan.count("Index Scan using task_claim_order") == 3, plan
