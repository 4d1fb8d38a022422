"""The queue counts kept by the database (``ReviewQueueCount``, migration 0045's triggers) equal counting the items,
as the queue list did before (``_counted``: that query, kept here as the oracle), after every kind of write, for every
reader's queues, under 16 concurrent claimers and while their rows are folded."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.review.counts import FOLD_AT, counts_fold
from moderation.review.models import ReviewQueue, ReviewQueueCount, ReviewTask
from moderation.review.selectors import SKIP_REASONS, review_queue_overview, review_queue_waiting
from moderation.review.services import (
    review_claim_next,
    review_escalate,
    review_queue_default,
    review_release,
    review_skip,
    review_submit,
)
from tests.moderation.review.seeding import seed_pending_tasks

KEYS = ("pending", "claimed", "stale", "done", "escalated", "sla_breached")


def _counted(queues: list[ReviewQueue]) -> dict[int, dict[str, int]]:
    """The queue list's counts as they were read before the kept counts: every item of each queue, counted."""
    now = timezone.now()
    S = ReviewTask.Status
    stats = {q.pk: dict.fromkeys(KEYS, 0) for q in queues}
    rows = (
        ReviewTask.objects.filter(queue__in=queues, is_gold=False)
        .values("queue_id")
        .annotate(
            pending=Count("pk", filter=Q(status=S.PENDING)),
            claimed=Count("pk", filter=Q(status=S.CLAIMED)),
            stale=Count("pk", filter=Q(status=S.CLAIMED, lease_expires_at__lte=now)),
            done=Count("pk", filter=Q(status=S.DONE)),
            escalated=Count("pk", filter=Q(status=S.ESCALATED)),
            sla_breached=Count(
                "pk",
                filter=Q(status__in=[S.PENDING, S.CLAIMED], deadline__lt=now)
                | Q(status__in=[S.DONE, S.ESCALATED], completed_at__gt=F("deadline")),
            ),
        )
        .order_by()
    )
    for row in rows:
        stats[row.pop("queue_id")].update(row)
    return stats


def _kept(queues: list[ReviewQueue]) -> dict[int, dict[str, int]]:
    overview = review_queue_overview(queues=queues)
    return {pk: {k: s[k] for k in KEYS} for pk, s in overview.items()}


def _assert_same(queues: list[ReviewQueue], when: str) -> None:
    kept, counted = _kept(queues), _counted(queues)
    assert kept == counted, f"{when}: kept {kept} != counted {counted}"
    for q in queues:
        assert review_queue_waiting(queue=q) == counted[q.pk]["pending"], when


@pytest.fixture
def world(make_task, make_user):  # type: ignore[no-untyped-def]
    """An open queue with a senior queue, a queue restricted to a group, and readers of each kind."""
    default = review_queue_default()
    senior = ReviewQueue.objects.create(name="Senior", slug="senior", routes_new_decisions=False)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    experts = Group.objects.create(name="Experts")
    restricted.allowed_groups.add(experts)
    outsider, expert, uploader = make_user("moderator"), make_user("moderator"), make_user("moderator")
    expert.groups.add(experts)
    admin = make_user("moderator", is_superuser=True)
    late = timezone.now() - timedelta(hours=1)
    soon = timezone.now() + timedelta(hours=1)
    for i in range(6):
        make_task(queue=default, deadline=late if i % 2 else soon, priority=i)
        make_task(queue=restricted, deadline=late if i % 3 == 0 else soon)
    own = [make_task(queue=default, decision__video__created_by=uploader, priority=100) for _ in range(2)]
    make_task(queue=default, is_gold=True)  # made per reviewer: never counted
    return {
        "queues": [default, senior, restricted],
        "default": default,
        "restricted": restricted,
        "outsider": outsider,
        "expert": expert,
        "uploader": uploader,
        "admin": admin,
        "own": own,
    }


@pytest.mark.django_db
def test_the_kept_counts_equal_counting_the_items_after_every_kind_of_write(world: dict[str, Any]) -> None:
    queues, default, restricted = world["queues"], world["default"], world["restricted"]
    outsider, expert, uploader, admin = world["outsider"], world["expert"], world["uploader"], world["admin"]
    _assert_same(queues, "made by the factories")

    held = review_claim_next(user=outsider, queue=default)
    assert held is not None
    _assert_same(queues, "claimed")
    ahead = review_claim_next(user=outsider, queue=default, exclude_ids=[held.pk])
    assert ahead is not None
    _assert_same(queues, "claimed ahead")
    review_submit(task=held, user=outsider, verdict="approve")
    _assert_same(queues, "decided")
    with pytest.raises(ModerationError):
        review_claim_next(user=outsider, queue=restricted)  # not theirs to work: nothing written
    _assert_same(queues, "refused")

    on_time = review_claim_next(user=expert, queue=restricted)
    assert on_time is not None
    review_submit(task=on_time, user=expert, verdict="approve")
    _assert_same(queues, "decided in the restricted queue")
    past = review_claim_next(user=expert, queue=restricted)
    assert past is not None and past.deadline is not None
    ReviewTask.objects.filter(pk=past.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    past.refresh_from_db()
    review_submit(task=past, user=expert, verdict="approve")
    _assert_same(queues, "decided after the deadline")

    # The uploader is never handed their own uploads (they stay counted, waiting for another reviewer).
    mine = review_claim_next(user=uploader, queue=default)
    assert mine is not None and mine.pk not in {t.pk for t in world["own"]}
    review_release(task=mine, user=uploader)
    _assert_same(queues, "released")
    theirs = review_claim_next(user=admin, queue=default)
    assert theirs is not None
    senior_task = review_escalate(task=theirs, user=admin, reason="needs a senior")
    _assert_same(queues, "escalated")
    assert _counted(queues)[world["queues"][1].pk]["pending"] == 1
    review_submit(task=ahead, user=outsider, verdict="approve")

    skipped = review_claim_next(user=admin, queue=default)
    assert skipped is not None
    assert review_skip(task=skipped, user=admin, reason=SKIP_REASONS[0]) is not None
    _assert_same(queues, "skipped")

    ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED).update(lease_expires_at=timezone.now())
    _assert_same(queues, "leases lapsed (the clock)")
    ReviewTask.objects.filter(queue=default, status=ReviewTask.Status.PENDING).update(queue=restricted)
    _assert_same(queues, "moved between queues in one statement")
    senior_task.decision.delete()  # the decision's items go with it (Django's cascade)
    _assert_same(queues, "deleted")
    seed_pending_tasks(n=30, queue=default, policy_version=senior_task.decision.policy_version)
    _assert_same(queues, "bulk created")
    ReviewTask.objects.filter(is_gold=True).update(status=ReviewTask.Status.DONE)
    _assert_same(queues, "a gold item decided")


@pytest.mark.django_db
def test_a_write_rolled_back_leaves_the_counts_as_they_were(world: dict[str, Any]) -> None:
    queues = world["queues"]
    before = _kept(queues)
    with pytest.raises(RuntimeError), transaction.atomic():
        ReviewTask.objects.filter(queue=world["default"]).update(status=ReviewTask.Status.DONE)
        assert _kept(queues) == _counted(queues)  # the transaction sees its own change counted
        raise RuntimeError
    assert _kept(queues) == before == _counted(queues)


@pytest.mark.django_db
def test_each_readers_queue_list_shows_the_counted_items(world: dict[str, Any], settings: Any) -> None:
    """The queue list of a reader outside the restricted group, one inside it, an uploader with items waiting
    and an admin: each queue it lists carries the counts of its items."""
    settings.REVIEW_STATS_MAX_AGE_SECONDS = 0  # counted for this request, not reused
    held = review_claim_next(user=world["expert"], queue=world["restricted"])
    assert held is not None
    for reader in ("outsider", "expert", "uploader", "admin"):
        client = Client()
        client.force_login(world[reader])
        rows = client.get(reverse("moderation:queue")).context["rows"]
        listed = [r["queue"] for r in rows]
        assert (world["restricted"] in listed) == (reader in ("expert", "admin")), reader
        counted = _counted(listed)
        assert {r["queue"].pk: {k: r["stats"][k] for k in KEYS} for r in rows} == counted, reader

    client = Client()
    client.force_login(world["expert"])
    screen = client.get(reverse("moderation:review_task", args=[held.pk]))
    assert screen.context["waiting"] == _counted([world["restricted"]])[world["restricted"].pk]["pending"]


@pytest.mark.django_db
def test_reading_folds_piled_up_rows_and_keeps_every_sum(world: dict[str, Any]) -> None:
    queues, default = world["queues"], world["default"]
    seed_pending_tasks(n=FOLD_AT, queue=default, policy_version=world["own"][0].decision.policy_version)
    for pk in ReviewTask.objects.filter(queue=default, is_gold=False).values_list("pk", flat=True)[:FOLD_AT]:
        ReviewTask.objects.filter(pk=pk).update(status=ReviewTask.Status.CLAIMED)  # a row per statement
    assert ReviewQueueCount.objects.filter(queue=default).count() > FOLD_AT
    _assert_same(queues, "piled up")  # read: folded after reading
    keys = ReviewQueueCount.objects.filter(queue=default).values("status", "late").distinct().count()
    assert ReviewQueueCount.objects.filter(queue=default).count() == keys
    _assert_same(queues, "folded")


@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_under_sixteen_claimers_and_concurrent_folds(policy_version, make_user) -> None:  # type: ignore[no-untyped-def]
    """16 reviewers claim and decide while 2 readers read (and fold) the counts: every read sees each item once
    (pending + claimed + done is the queue's size at every instant), and at the end the counts are the items'."""
    from tests.moderation.review.test_concurrency import drain

    n = 240
    queue = review_queue_default()
    seed_pending_tasks(n=n, queue=queue, policy_version=policy_version)
    users = [make_user("moderator") for _ in range(16)]
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                s = review_queue_overview(queues=[queue])[queue.pk]
                seen.append(s["pending"] + s["claimed"] + s["done"])
                counts_fold(queue_ids=[queue.pk])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    claims, drain_errors = drain(users, queue)
    stop.set()
    for r in readers:
        r.join(60)

    assert not errors and not drain_errors, (errors + drain_errors)[:3]
    assert len(claims) == n
    assert seen and set(seen) == {n}
    assert _kept([queue]) == _counted([queue])
    assert _kept([queue])[queue.pk]["done"] == n
