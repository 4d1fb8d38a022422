"""A reviewer whose roles change while they hold an item: taken out of the groups a queue is restricted to,
deactivated, or no longer a reviewer. The claim statement refuses them new items; a verdict or an escalation on
the item they still hold is refused too, and the item goes back to the queue for someone who may work it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from moderation.errors import ModerationError
from moderation.review.models import AuditEvent, Review, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next, review_escalate, review_submit

pytestmark = pytest.mark.django_db


def _restricted_item(make_task, make_user):  # type: ignore[no-untyped-def]
    """An item in a queue restricted to "experts", claimed by an expert, whose video is also in the default queue
    open to everyone (so the video stays open to the expert once they leave the group)."""
    experts = Group.objects.create(name="experts")
    seniors = ReviewQueue.objects.create(name="Seniors", slug="seniors")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts", escalation_queue=seniors)
    restricted.allowed_groups.add(experts)
    open_item = make_task()
    item = ReviewTask.objects.create(decision=open_item.decision, queue=restricted, deadline=open_item.deadline)
    alice = make_user("moderator")
    alice.groups.add(experts)
    assert review_claim_next(user=alice, queue=restricted).pk == item.pk
    return item, experts, alice


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # the next request's user: roles read again


def test_a_reviewer_taken_out_of_the_queues_group_cannot_decide_the_item_they_hold(make_task, make_user):
    """Before: the submit checked the claim only, so the verdict was recorded in a queue the reviewer may no longer
    work (the video being open to them through the item in the default queue)."""
    item, experts, alice = _restricted_item(make_task, make_user)
    alice.groups.remove(experts)
    client = Client()
    client.force_login(alice)

    answer = client.post(f"/review/{item.pk}/submit/", {"verdict": "approve"}, follow=True)

    assert answer.status_code == 200
    assert "You may no longer work the queue “Experts”" in answer.content.decode()
    assert not Review.objects.filter(task=item).exists()
    item.refresh_from_db()
    assert item.status == ReviewTask.Status.PENDING and item.claimed_by_id is None  # back for an expert
    released = AuditEvent.objects.get(action="release", object_id=str(item.pk))
    assert released.payload == {"queue": "experts", "roles_changed": True} and released.actor_id == alice.pk


def test_nor_escalate_it(make_task, make_user):
    item, experts, alice = _restricted_item(make_task, make_user)
    alice.groups.remove(experts)

    with pytest.raises(ModerationError, match="You may no longer work the queue “Experts”"):
        review_escalate(task=item, user=_fresh(alice), reason="needs a senior")

    item.refresh_from_db()
    assert item.status == ReviewTask.Status.PENDING and item.claimed_by_id is None
    assert not ReviewTask.objects.filter(queue__slug="seniors").exists()


@pytest.mark.parametrize("change", ["deactivated", "no longer a reviewer"])
def test_a_deactivated_or_demoted_reviewer_cannot_decide_the_item_they_hold(make_task, make_user, change):
    item, _experts, alice = _restricted_item(make_task, make_user)
    if change == "deactivated":
        User.objects.filter(pk=alice.pk).update(is_active=False)
    else:
        alice.groups.clear()

    with pytest.raises(ModerationError, match="You may no longer work the queue"):
        review_submit(task=item, user=_fresh(alice), verdict="approve")

    assert not Review.objects.filter(task=item).exists()
    item.refresh_from_db()
    assert item.status == ReviewTask.Status.PENDING and item.claimed_by_id is None


def test_a_member_still_decides_as_before(make_task, make_user):
    item, _experts, alice = _restricted_item(make_task, make_user)

    review = review_submit(task=item, user=_fresh(alice), verdict="approve")

    assert review.task_id == item.pk
