"""Claiming review items: distinct items per reviewer, SKIP LOCKED, leases, release, logout."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from moderation.review.models import ReviewTask
from moderation.review.services import review_claim_ahead, review_claim_next, review_release, review_skip

pytestmark = pytest.mark.django_db


def test_two_reviewers_get_distinct_items_and_reclaiming_returns_own(make_task, make_user):
    first, second = make_task(), make_task()
    alice, bob = make_user("moderator"), make_user("moderator")

    a = review_claim_next(user=alice)
    b = review_claim_next(user=bob)

    assert {a.pk, b.pk} == {first.pk, second.pk}
    assert a.claimed_by == alice and a.status == ReviewTask.Status.CLAIMED
    assert a.lease_expires_at > timezone.now()
    # Asking again does not hoard a second item: the open claim comes back.
    assert review_claim_next(user=alice).pk == a.pk
    assert review_claim_next(user=make_user("moderator")) is None


def test_priority_then_age_decides_the_order(make_task, make_user):
    old = make_task()
    urgent = make_task(priority=5)
    assert review_claim_next(user=make_user("moderator")).pk == urgent.pk
    assert review_claim_next(user=make_user("moderator")).pk == old.pk


def test_expired_lease_is_reclaimable_by_someone_else(make_task, make_user):
    task = make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice)
    assert review_claim_next(user=bob) is None

    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    got = review_claim_next(user=bob)

    assert got is not None and got.pk == task.pk
    task.refresh_from_db()
    assert task.claimed_by == bob and task.lease_expires_at > timezone.now()


def test_release_puts_item_back(make_task, make_user):
    task = make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice)
    review_release(task=task, user=alice)
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.PENDING and task.claimed_by is None
    assert review_claim_next(user=bob).pk == task.pk


def test_skip_swaps_for_the_next_item(make_task, make_user):
    first, second = make_task(), make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == first.pk
    nxt = review_skip(task=first, user=alice, reason="Conflict of interest")
    assert nxt.pk == second.pk
    first.refresh_from_db()
    assert first.status == ReviewTask.Status.PENDING
    # Nothing else waiting: the reviewer keeps the item.
    assert review_skip(task=second, user=alice, reason="Conflict of interest").pk == first.pk


def test_an_item_the_reviewer_skipped_comes_back_to_them_only_after_the_others(make_task, make_user):
    # Seen in Chromium: a moderator skipped item A ("let another reviewer decide") and the item claimed
    # ahead for them next was A again, while C, which no one had seen, waited.
    a, b, c = make_task(), make_task(), make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    assert review_claim_next(user=alice).pk == a.pk
    assert review_skip(task=a, user=alice, reason="Not sure: let another reviewer decide").pk == b.pk

    assert review_claim_ahead(user=alice, task=b).pk == c.pk
    # Another reviewer gets the skipped item first, as its place in the queue says.
    assert review_claim_next(user=bob).pk == a.pk
    review_release(task=a, user=bob)
    # With nothing else waiting, the skipped item is served to the reviewer who skipped it.
    review_skip(task=b, user=alice, reason="Conflict of interest")
    assert review_claim_ahead(user=alice, task=c).pk == a.pk


def test_logout_releases_the_users_claims(make_task, client_as, make_user):
    task = make_task()
    client = client_as("moderator")
    client.post("/review/claim/")
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED

    client.post("/logout/")

    task.refresh_from_db()
    assert task.status == ReviewTask.Status.PENDING and task.claimed_by is None


@pytest.mark.django_db(transaction=True)
def test_row_locked_by_another_transaction_is_skipped(make_task, make_user):
    """SKIP LOCKED: a row another connection holds FOR UPDATE is passed over, not waited on."""
    locked_task, free_task = make_task(), make_task()
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                ReviewTask.objects.select_for_update().get(pk=locked_task.pk)
                holding.set()
                release.wait(10)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
            holding.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holding.wait(10)
        got = review_claim_next(user=make_user("moderator"))
    finally:
        release.set()
        thread.join(10)
    assert not errors
    assert got is not None and got.pk == free_task.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_an_item(make_task, make_user):
    tasks = [make_task() for _ in range(6)]
    users = [make_user("moderator") for _ in range(6)]
    barrier = threading.Barrier(len(users))
    got: dict[int, int | None] = {}

    def claim(user) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(10)
            task = review_claim_next(user=user)
            got[user.pk] = task.pk if task else None
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)

    claimed = [pk for pk in got.values() if pk is not None]
    assert len(claimed) == len(set(claimed)), "two reviewers got the same item"
    assert set(claimed) == {t.pk for t in tasks}


def test_is_held_by_is_the_one_rule_for_this_item_is_still_mine(make_task, make_user):
    """Claimed by you and not yet decided: yours, even once the lease lapsed, until someone else claims it."""
    alice, bob = make_user("moderator"), make_user("moderator")
    task = review_claim_next(user=alice, queue=make_task().queue)
    assert task.is_held_by(alice) and not task.is_held_by(bob)
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    task.refresh_from_db()
    assert task.is_held_by(alice)  # lapsed, but no one took it
    assert review_claim_next(user=bob).pk == task.pk
    task.refresh_from_db()
    assert task.is_held_by(bob) and not task.is_held_by(alice)
    task.status = ReviewTask.Status.DONE
    assert not task.is_held_by(bob)  # decided: no longer anyone's to act on
    from django.contrib.auth.models import AnonymousUser

    task.status, task.claimed_by = ReviewTask.Status.PENDING, None
    assert not task.is_held_by(AnonymousUser())  # an unclaimed item is no one's, not the anonymous user's


def test_a_skip_with_nothing_else_waiting_keeps_the_item_for_the_reviewer_again(make_task, make_user, client_as):
    """Walked in Chromium: on an item whose claim had lapsed, "n" (skip) with nothing else waiting said "No
    other item is waiting; this one stays with you." under the banner "Your claim lapsed at 00:59": the lease
    was left lapsed, so the item was anyone's to take."""
    from django.test import Client

    task = make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == task.pk
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    client = Client()
    client.force_login(alice)

    page = client.post(f"/review/{task.pk}/skip/", {"reason": "Conflict of interest"}, follow=True)

    task.refresh_from_db()
    assert task.claimed_by == alice and task.lease_expires_at > timezone.now() + timedelta(minutes=10)
    html = page.content.decode()
    assert "this one stays with you" in html and "Your claim lapsed" not in html
