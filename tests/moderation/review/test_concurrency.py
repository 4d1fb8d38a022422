"""16 concurrent reviewers draining a queue on the real Postgres: no item is given to two
reviewers, no review is lost or recorded twice.

The item count is ``REVIEW_DRAIN_ITEMS``: 400 in the suite (400 claims raced by 16 claimers, 25 each;
12 s alone on 2 cores at load 4.5, where 2,000 took 39-52 s); ``REVIEW_DRAIN_ITEMS=10000`` runs the 10,000-item drain issue 5 asked for (about
3 min in the full suite), and so does ``bench/queue_claim.py --drain 10000``. What the drain proves does
not need the larger count: with the pending leg's row lock removed from the claim statement (no
``FOR UPDATE``), a 300-item drain failed 3 runs out of 3 (two reviewers given one item, the second's
submit refused). Dropping only ``SKIP LOCKED`` keeps the drain correct (claimers wait instead of skipping,
at any count): ``test_claims.py::test_row_locked_by_another_transaction_is_skipped`` is the test that fails then.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from django.db import connection

from moderation.review.models import AuditEvent, Review, ReviewTask
from moderation.review.services import review_claim_next, review_queue_default, review_submit
from tests.moderation.review.seeding import seed_pending_tasks

CLAIMERS = 16


# What the claim statement reads (moderation.review.services._CLAIM_SQL and the visibility clause).
_CLAIM_READS = (
    "moderation_reviewtask",
    "moderation_decision",
    "moderation_video",
    "moderation_review",
    "moderation_reviewskip",
    "moderation_reviewqueue_allowed_groups",
    "moderation_awaitedqueueitem",
    "auth_user_groups",
)


def drain(users, queue) -> tuple[list[tuple[int, int]], list[BaseException]]:  # type: ignore[no-untyped-def]
    """Each user claims and submits until the queue is empty; returns (user, task) claims and errors.

    The tables the claim reads are analysed first, as autovacuum keeps them in production: the claim's plan
    follows their statistics, and a worker's test database may hold ones that say empty (an autovacuum pass over
    an earlier test's dead rows) beside the hundreds of rows just seeded in bulk. On such statistics one claim
    took 2.3 s instead of 0.05 s, and under ``-n 2`` sixteen first claims spun for ten minutes."""
    with connection.cursor() as cursor:
        for table in _CLAIM_READS:
            cursor.execute(f"ANALYZE {table}")
    claims: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(users))

    def work(user) -> None:  # type: ignore[no-untyped-def]
        mine: list[tuple[int, int]] = []
        try:
            barrier.wait(30)
            while True:
                task = review_claim_next(user=user, queue=queue)
                if task is None:
                    break
                mine.append((user.pk, task.pk))
                review_submit(task=task, user=user, verdict="approve")
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)
        finally:
            with lock:
                claims.extend(mine)
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return claims, errors


@pytest.mark.django_db(transaction=True)
def test_sixteen_claimers_drain_the_queue_without_sharing_or_losing_items(policy_version, make_user):
    n = int(os.environ.get("REVIEW_DRAIN_ITEMS", "400"))
    queue = review_queue_default()
    seed_pending_tasks(n=n, queue=queue, policy_version=policy_version)
    users = [make_user("moderator") for _ in range(CLAIMERS)]

    claims, errors = drain(users, queue)

    assert not errors, errors[:3]
    per_task = Counter(task_id for _user, task_id in claims)
    assert len(per_task) == n, "items were lost"
    assert max(per_task.values()) == 1, "an item was given to two reviewers"
    assert ReviewTask.objects.filter(queue=queue).exclude(status=ReviewTask.Status.DONE).count() == 0
    assert Review.objects.count() == n
    assert Review.objects.values("task").distinct().count() == n
    reviewer_of = dict(Review.objects.values_list("task_id", "reviewer_id"))
    assert all(reviewer_of[task_id] == user_id for user_id, task_id in claims)
    assert AuditEvent.objects.filter(action="claim").count() == n
    # Every reviewer took part (SKIP LOCKED: nobody waited for the others).
    assert len({user_id for user_id, _task in claims}) == CLAIMERS


@pytest.mark.django_db(transaction=True)
def test_double_review_settles_every_item_when_both_reviews_land_at_once(policy_version, make_user):
    """The two reviews of an item are submitted concurrently; whichever commits last must see the
    other and store the agreed label (submits of one decision are serialised on its row)."""
    from moderation.labels.models import ItemLabel
    from moderation.review.models import ReviewQueue

    n = 150
    queue = ReviewQueue.objects.create(name="Double", slug="double", required_reviews=2)
    seed_pending_tasks(n=n, queue=queue, policy_version=policy_version)
    second_slots = [
        ReviewTask(decision_id=t.decision_id, queue=queue, slot=1, priority=t.priority, deadline=t.deadline)
        for t in ReviewTask.objects.filter(queue=queue)
    ]
    ReviewTask.objects.bulk_create(second_slots)
    users = [make_user("moderator") for _ in range(8)]

    claims, errors = drain(users, queue)

    assert not errors, errors[:3]
    assert len(claims) == 2 * n
    per_item = Counter(ReviewTask.objects.filter(queue=queue).values_list("decision__video_id", flat=True))
    assert set(per_item.values()) == {2}
    labelled = ItemLabel.objects.filter(source=ItemLabel.Source.REVIEW, video_id__in=per_item).count()
    assert labelled == n, f"{n - labelled} items reviewed twice in agreement were left without their label"
