"""A reviewer outside a restricted queue's groups who opened its URL (its page, its "Claim next", an item in it) was
refused with a 403 naming the queue: anyone with a review role could learn a restricted queue's name, and that it
exists, by trying slugs. Now they get the 404 of a queue that does not exist, the same words, and an item in it the
404 of an item hidden from them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from moderation.review.models import ReviewQueue, ReviewTask
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db

SECRET = "Minors Escalation Desk"


def _reason(page) -> str:  # type: ignore[no-untyped-def]
    """The 404 page's reason paragraph."""
    found = re.search(r"<h1>Not found</h1><p>(.*?)</p>", page.content.decode(), re.S)
    assert found, page.content.decode()[:500]
    return found.group(1)


def _restricted() -> ReviewQueue:
    queue = ReviewQueue.objects.create(name=SECRET, slug="minors-desk")
    queue.allowed_groups.add(Group.objects.create(name="minors-team"))
    return queue


def test_a_restricted_queue_reads_to_outsiders_as_one_that_does_not_exist(make_user):
    _restricted()
    client = Client()
    client.force_login(make_user("moderator"))
    for method, name in (("get", "moderation:queue_detail"), ("post", "moderation:queue_claim_next")):
        restricted = getattr(client, method)(reverse(name, args=["minors-desk"]))
        missing = getattr(client, method)(reverse(name, args=["no-such-queue"]))
        assert restricted.status_code == missing.status_code == 404, (name, restricted.status_code)
        assert SECRET not in restricted.content.decode() and "minors" not in _reason(restricted).lower()
        assert _reason(restricted) == _reason(missing)
        assert "not open to you" in _reason(restricted)


def test_its_members_still_open_it(make_user):
    queue = _restricted()
    member = make_user("moderator")
    member.groups.add(queue.allowed_groups.get())
    client = Client()
    client.force_login(member)
    page = client.get(reverse("moderation:queue_detail", args=["minors-desk"]))
    assert page.status_code == 200 and SECRET in page.content.decode()


def test_an_item_in_it_is_the_404_of_a_hidden_item_not_a_403_naming_the_queue(policy_version, make_user):
    """The video is open to the reviewer (its decision has an item in an open queue too), the item they open is the
    restricted queue's: its page named the queue."""
    restricted = _restricted()
    decision = DecisionFactory(policy_version=policy_version)
    open_item = ReviewTask.objects.create(decision=decision, queue=ReviewQueue.objects.get(slug="default"))
    secret_item = ReviewTask.objects.create(decision=decision, queue=restricted)
    client = Client()
    client.force_login(make_user("moderator"))
    assert client.get(reverse("moderation:review_task", args=[open_item.pk])).status_code in (200, 403)
    page = client.get(reverse("moderation:review_task", args=[secret_item.pk]))
    assert page.status_code == 404, page.status_code
    assert SECRET not in page.content.decode()
    # Word for word an item whose video is hidden from them (``review_task_get``): the generic 404.
    hidden = ReviewTask.objects.create(
        decision=DecisionFactory(policy_version=policy_version, video__created_by=None), queue=restricted
    )
    assert _reason(page) == _reason(client.get(reverse("moderation:review_task", args=[hidden.pk])))
