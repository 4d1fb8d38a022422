"""A reviewer deactivated, demoted, or taken out of a restricted queue's group gives back the items they held at
once (audited ``release`` with ``roles_changed``), so another reviewer takes them now, not when the 15-minute
lease lapses. Before, the items stayed held, closed to everyone else, until the lease ran out."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from moderation.review.models import AuditEvent, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next

pytestmark = pytest.mark.django_db


def _released_to_others(item: ReviewTask, alice: User, make_user) -> None:  # type: ignore[no-untyped-def]
    item.refresh_from_db()
    assert item.status == ReviewTask.Status.PENDING and item.claimed_by_id is None
    released = AuditEvent.objects.get(action="release", object_id=str(item.pk))
    assert released.payload == {"queue": item.queue.slug, "roles_changed": True} and released.actor_id == alice.pk
    bob = make_user("moderator")
    if item.queue.allowed_groups.exists():
        bob.groups.add(*item.queue.allowed_groups.all())
    assert review_claim_next(user=User.objects.get(pk=bob.pk), queue=item.queue).pk == item.pk


def test_an_admin_deactivating_a_reviewer_in_the_admin_frees_their_item(
    make_task, make_user, django_capture_on_commit_callbacks
):
    item = make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice, queue=item.queue).pk == item.pk
    admin = Client()
    admin.force_login(make_user("admin", is_staff=True, is_superuser=True))
    form = {
        "username": alice.username,
        "groups": [Group.objects.get(name="moderator").pk],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": alice.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": alice.date_joined.strftime("%H:%M:%S"),
    }  # "is_active" left out: the box unticked

    with django_capture_on_commit_callbacks(execute=True):
        answer = admin.post(f"/admin/auth/user/{alice.pk}/change/", form)

    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert not User.objects.get(pk=alice.pk).is_active
    _released_to_others(item, alice, make_user)


def test_a_reviewer_who_loses_the_role_frees_their_item(make_task, make_user, django_capture_on_commit_callbacks):
    item = make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice, queue=item.queue).pk == item.pk

    with django_capture_on_commit_callbacks(execute=True):
        alice.groups.remove(Group.objects.get(name="moderator"))

    _released_to_others(item, alice, make_user)


def test_taken_out_of_a_restricted_queues_group_frees_that_item_only(
    make_task, make_user, django_capture_on_commit_callbacks
):
    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    restricted.allowed_groups.add(experts)
    open_item = make_task()
    expert_item = ReviewTask.objects.create(
        decision=make_task().decision, queue=restricted, deadline=open_item.deadline
    )
    alice = make_user("moderator")
    alice.groups.add(experts)
    assert review_claim_next(user=alice, queue=open_item.queue).pk == open_item.pk
    assert review_claim_next(user=alice, queue=restricted).pk == expert_item.pk

    with django_capture_on_commit_callbacks(execute=True):
        experts.user_set.remove(alice)  # from the group's side, as a script might

    _released_to_others(expert_item, alice, make_user)
    open_item.refresh_from_db()
    assert open_item.claimed_by_id == alice.pk  # she may still work the open queue: hers still


def test_other_edits_and_sign_ins_keep_the_claim(make_task, make_user, django_capture_on_commit_callbacks):
    item = make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice, queue=item.queue).pk == item.pk

    with django_capture_on_commit_callbacks(execute=True):
        alice.email = "alice@example.org"
        alice.save()
        Client().force_login(alice)

    item.refresh_from_db()
    assert item.claimed_by_id == alice.pk and item.status == ReviewTask.Status.CLAIMED
    assert not AuditEvent.objects.filter(action="release").exists()
