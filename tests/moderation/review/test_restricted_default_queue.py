"""The default queue (``POST /review/claim/``, the claim with no queue named) and the tags queue
(``POST /tags/claim/``) restricted to groups by an admin: a reviewer outside them who pressed "Claim next" was
refused with a 403 naming the queue ("You may not work the queue “…”"), the name the queue URLs now keep from
outsiders (``QUEUE_NOT_OPEN_TEXT``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from moderation.review.models import ReviewQueue
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
