"""A reviewer never decides their own content: the claim never hands them an item whose video they uploaded
(admins included), the queue list and "Claim next" say why, and a claim held from before is refused at submit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.review.models import Review, ReviewTask
from moderation.review.services import OWN_UPLOAD, review_claim_next, review_release, review_submit

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["moderator", "admin"])
def test_the_claim_never_hands_a_reviewer_their_own_upload(make_task, make_user, role):
    uploader, colleague = make_user(role), make_user("moderator")
    theirs = make_task(decision__video__created_by=uploader, priority=9)  # first in the queue's order
    other = make_task()

    got = review_claim_next(user=uploader)
    assert got is not None and got.pk == other.pk
    review_release(task=got, user=uploader)
    got = review_claim_next(user=colleague)
    assert got is not None and got.pk == theirs.pk  # someone else takes it first

    # The item whose lease lapsed goes back to others, never to its uploader.
    ReviewTask.objects.filter(pk=theirs.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_claim_next(user=uploader).pk == other.pk


def test_a_claim_on_ones_own_upload_held_from_before_is_not_served_nor_decided(make_task, make_user):
    uploader = make_user("moderator")
    task = make_task(decision__video__created_by=uploader)
    ReviewTask.objects.filter(pk=task.pk).update(
        status=ReviewTask.Status.CLAIMED,
        claimed_by=uploader,
        claimed_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    task.refresh_from_db()

    assert review_claim_next(user=uploader) is None
    with pytest.raises(ModerationError) as refused:
        review_submit(task=task, user=uploader, verdict="approve")
    assert str(refused.value) == OWN_UPLOAD
    assert not Review.objects.filter(task=task).exists()
    review_release(task=task, user=uploader)  # they can hand it back
    assert review_claim_next(user=make_user("moderator")).pk == task.pk


def test_the_queue_list_and_claim_next_say_the_items_left_are_ones_own_uploads(make_task, make_user):
    uploader = make_user("moderator")
    make_task(decision__video__created_by=uploader)
    make_task(decision__video__created_by=uploader)
    client = _client(uploader)

    html = client.get(reverse("moderation:queue")).content.decode()
    assert "2 waiting are your own uploads: another reviewer takes them" in html
    assert "the items left in your queues are your own uploads" in html
    assert 'data-hotkey="n"' not in html  # no "Claim next" offered that would come back empty

    response = client.post(reverse("moderation:queue_claim_next", args=["default"]), follow=True)
    text = response.content.decode()
    assert "Nothing to claim for you: the 2 items left in “Default” are your own uploads" in text
    assert "Queue is empty." not in text

    # Another reviewer's list offers them as usual.
    other = _client(make_user("moderator")).get(reverse("moderation:queue")).content.decode()
    assert "your own upload" not in other and 'data-hotkey="n"' in other


def test_the_queue_list_says_how_many_of_the_waiting_items_are_ones_own(make_task, make_user):
    uploader = make_user("moderator")
    make_task(decision__video__created_by=uploader)
    make_task()

    html = _client(uploader).get(reverse("moderation:queue")).content.decode()
    assert "1 of those waiting is your own upload, left to other reviewers" in html
    assert 'data-hotkey="n"' in html
