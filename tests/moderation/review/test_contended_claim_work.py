"""The work a claim does when other claimers hold the head of the queue, and the claim's commit.

A claim locks first and judges after: the reviewer's rules run on the row it could lock, not on each row other
claimers hold. Its own transaction commits without waiting for the WAL flush; inside a caller's transaction the
caller's durability holds (``moderation.review.services._CLAIM_SQL``)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from moderation.review import services
from moderation.review.services import review_claim_next, review_release

# Index entries the claim reads from the decisions' primary key: the reviewer's rules look each candidate's decision
# up (its video's uploader, the visibility rule), so this counts the candidates the rules ran on.
_DECISION_LOOKUPS = "SELECT pg_stat_get_xact_tuples_returned('moderation_decision_pkey'::regclass)"


def _claim_counting_decision_lookups(user) -> tuple[Any, int]:  # type: ignore[no-untyped-def]
    # The backend's per-transaction counters also hold its earlier transactions not yet reported: read before and after.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_DECISION_LOOKUPS)
        before = cursor.fetchone()[0]
        task = review_claim_next(user=user)
        cursor.execute(_DECISION_LOOKUPS)
        return task, cursor.fetchone()[0] - before


@pytest.mark.django_db(transaction=True)
def test_a_claim_behind_items_being_claimed_runs_the_reviewers_rules_only_on_the_item_it_takes(make_task, make_user):
    """Eight items at the head of the queue are held by other claimers mid-claim, the ninth is the reviewer's own
    upload: the claim passes over all nine and takes the tenth, having looked up the decisions of the two it could
    lock (the own upload it refused, the item it took) and not of the eight it could not. Compared with the same
    reviewer's claim of the first item once nobody holds any."""
    uploader = make_user("moderator")
    held = [make_task(priority=9) for _ in range(8)]
    own = make_task(priority=8, decision__video__created_by=uploader)
    wanted = make_task(priority=7)
    make_task(priority=1)
    review_release(task=review_claim_next(user=uploader), user=uploader)  # the statement prepared, its plan chosen
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT id FROM moderation_reviewtask WHERE id = ANY(%s) FOR UPDATE", [[t.pk for t in held]])
        task, behind_held = _claim_counting_decision_lookups(uploader)
        other.rollback()
    assert task is not None and task.pk == wanted.pk and task.pk != own.pk
    review_release(task=task, user=uploader)
    first, alone = _claim_counting_decision_lookups(uploader)
    assert first is not None and first.pk == held[0].pk

    # Judged before locking, each held row cost its own lookups: 19 against 2 before the change, 4 against 2 now.
    assert behind_held <= 3 * alone, (behind_held, alone)


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
    """Locking first puts the reviewer's rules in an outer query; written as joins there they made PostgreSQL plan the
    inner walk for every row: a sequential scan and sort of the whole queue (3k items) on every claim. The plan the
    prepared statement keeps (generic) walks ``task_claim_order`` in every leg."""
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
    assert "Seq Scan on moderation_reviewtask" not in plan, plan
    assert plan.count("Index Scan using task_claim_order") == 4, plan
