"""The default queue (``POST /review/claim/``, the claim with no queue named) and the tags queue
(``POST /tags/claim/``) restricted to groups by an admin: a reviewer outside them who pressed "Claim next" was
refused with a 403 naming the queue ("You may not work the queue “…”"), the name the queue URLs now keep from
outsiders (``QUEUE_NOT_OPEN_TEXT``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.selectors import QUEUE_NOT_OPEN_TEXT
from moderation.review.services import review_queue_default
from moderation.tagging.services import tag_queue_default

pytestmark = pytest.mark.django_db

SECRET = "Minors Escalation Desk"


def _restrict(queue: ReviewQueue) -> None:
    queue.name = SECRET
    queue.save(update_fields=["name"])
    queue.allowed_groups.add(Group.objects.create(name=f"team-{queue.slug}"))


@pytest.mark.parametrize("which", ["default", "tags"])
def test_claim_next_of_a_restricted_default_queue_does_not_name_it(client_as, which) -> None:
    _restrict(review_queue_default() if which == "default" else tag_queue_default())
    client = client_as("moderator")
    url = reverse("moderation:claim_next" if which == "default" else "moderation:tag_claim_next")

    response = client.post(url)

    page = response.content.decode()
    assert response.status_code == 404, (response.status_code, page[:300])
    assert SECRET not in page
    assert QUEUE_NOT_OPEN_TEXT.split(":")[0] in page


def test_the_tags_queue_page_restricted_is_the_same_404_and_open_to_its_members(client_as, make_user) -> None:
    queue = tag_queue_default()
    _restrict(queue)
    outsider = client_as("moderator").get(reverse("moderation:tag_queue"))
    assert outsider.status_code == 404 and SECRET not in outsider.content.decode()
    member = make_user("moderator")
    member.groups.add(queue.allowed_groups.get())
    client = Client()
    client.force_login(member)
    assert client.get(reverse("moderation:tag_queue")).status_code == 200


@pytest.mark.parametrize("action", ["review_submit", "review_skip", "review_escalate", "review_release"])
def test_actions_on_an_item_of_a_queue_not_open_to_you_are_its_404_too(policy_version, make_user, action) -> None:
    """Its page was the 404 of a hidden item, but a POST to its actions answered by its state ("already reviewed",
    "not claimed by you", "claimed by another"): whether an item exists in a queue hidden from you, and how far it
    got, read from the messages. The video is open to the reviewer (its decision has an item in an open queue)."""
    from tests.factories import DecisionFactory

    restricted = ReviewQueue.objects.create(name=SECRET, slug="minors-desk")
    restricted.allowed_groups.add(Group.objects.create(name="minors-team"))
    decision = DecisionFactory(policy_version=policy_version)
    ReviewTask.objects.create(decision=decision, queue=review_queue_default())
    secret_item = ReviewTask.objects.create(decision=decision, queue=restricted, status=ReviewTask.Status.DONE)
    client = Client()
    client.force_login(make_user("moderator"))

    response = client.post(reverse(f"moderation:{action}", args=[secret_item.pk]), {"reason": "x", "verdict": "a"})

    assert response.status_code == 404, (response.status_code, response.get("Location"))
    assert SECRET not in response.content.decode()
    followed = client.get(reverse("moderation:queue")).content.decode()  # no message left to tell its state
    from django.utils.html import escape

    from moderation.review import services

    for said in (services.ALREADY_REVIEWED, services.NOT_CLAIMED, services.NO_LONGER_YOURS, services.ESCALATED):
        assert escape(said) not in followed and said not in followed
