"""One wording rule for the review queues: "Review queues" (plural) names the list of queues, wherever it is named or
linked (the header, its title and heading, the ways back to it), "review queue" (singular) one queue. The header said
"Review queue" for the list titled "Review queues", and the review screen "Back to queue"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from moderation.review.services import review_claim_next, review_queue_default

pytestmark = pytest.mark.django_db


def test_the_list_of_queues_is_review_queues_everywhere_and_one_queue_is_a_review_queue(make_task, make_user, client):
    task = make_task()
    user = make_user("moderator")
    client.force_login(user)

    home = client.get("/").content.decode()
    queues = client.get(reverse("moderation:queue")).content.decode()
    one = client.get(reverse("moderation:queue_detail", args=[review_queue_default().slug])).content.decode()
    unclaimed = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert review_claim_next(user=user) == task
    item = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()

    list_url = reverse("moderation:queue")
    for page in (home, queues, one, item):  # the header's link to the list
        assert (
            f'<a href="{list_url}">Review queues</a>' in page
            or f'href="{list_url}" aria-current="page">Review queues' in page
        )
        assert not re.search(r">Review queue</a>", page)
    assert "<title>Review queues · Review workbench</title>" in queues and "<h1>Review queues</h1>" in queues
    assert f"<title>{review_queue_default().name} · Review queue · Review workbench</title>" in one
    assert f'<a href="{list_url}">← Review queues</a>' in one  # the way back from one queue to the list
    assert f'<a href="{list_url}" class="back">Back to review queues</a>' in item
    assert f'<a href="{list_url}">All review queues</a>' in home
    assert "use “Claim next” on the Review queues page" in unclaimed
