"""A video deleted while its review screen is open, before the reviewer decides: the verdict (or skip, escalation,
release) said "Not found", a bare 404 page. Now the reviewer gets the words the race inside the submit gives ("This
item is no longer in the queue…") and a way on: the next item they hold, else the queue list with its "Claim next"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from moderation.media.models import Video
from moderation.review.models import Review, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_ahead, review_claim_next

pytestmark = pytest.mark.django_db
GONE = "This item is no longer in the queue (given back, or its video removed); nothing was recorded."


def _held_then_deleted(make_task, make_user, *, ahead: bool = False):  # type: ignore[no-untyped-def]
    task = make_task()
    if ahead:
        make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == task.pk
    nxt = review_claim_ahead(user=alice, task=task) if ahead else None
    client = Client()
    client.force_login(alice)
    Video.objects.filter(pk=task.decision.video_id).delete()  # the admin's delete, the screen still open
    return task, nxt, client


@pytest.mark.parametrize("action", ["submit", "skip", "escalate", "release"])
def test_an_action_on_an_item_whose_video_was_deleted_says_so_and_leads_to_the_queues(make_task, make_user, action):
    task, _nxt, client = _held_then_deleted(make_task, make_user)

    answer = client.post(
        f"/review/{task.pk}/{action}/", {"verdict": "approve", "reason": "needs a senior"}, follow=True
    )

    assert answer.status_code == 200  # was 404 "Not found"
    page = answer.content.decode()
    assert answer.redirect_chain[-1][0] == "/review/"
    assert GONE in page and "Claim next" in page
    assert not Review.objects.exists()


def test_with_an_item_claimed_ahead_the_reviewer_goes_on_to_it(make_task, make_user):
    task, nxt, client = _held_then_deleted(make_task, make_user, ahead=True)
    assert nxt is not None

    answer = client.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}, follow=True)

    assert answer.redirect_chain[-1][0] == f"/review/{nxt.pk}/"
    assert f"{GONE} Here is your next item." in answer.content.decode()


def test_htmx_and_background_submits_get_the_same_words(make_task, make_user):
    task, _nxt, client = _held_then_deleted(make_task, make_user)

    htmx = client.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}, HTTP_HX_REQUEST="true")
    background = client.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}, HTTP_X_REVIEW_BACKGROUND="1")

    assert htmx.status_code == 204 and htmx["HX-Redirect"] == "/review/"
    assert background.status_code == 409
    assert background.json() == {"ok": False, "task": task.pk, "error": GONE, "still_yours": False}


def test_an_item_that_exists_but_is_hidden_from_the_reviewer_is_still_not_found(make_task, make_user):
    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    restricted.allowed_groups.add(experts)
    task = make_task(queue=restricted)  # its video is the experts' only
    stranger = Client()
    stranger.force_login(make_user("moderator"))
    assert ReviewTask.objects.filter(pk=task.pk).exists()

    assert stranger.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}).status_code == 404


def test_opening_an_item_whose_video_was_deleted_says_so_with_the_way_on(make_task, make_user):
    """Walked: the actions said "no longer in the queue", but opening or reloading the item's page was still a bare
    404 "Not found". The page now says the same words and links the reviewer's next held item and the queues."""
    task, nxt, client = _held_then_deleted(make_task, make_user, ahead=True)
    assert nxt is not None

    answer = client.get(f"/review/{task.pk}/")

    assert answer.status_code == 410
    page = answer.content.decode()
    assert "This item is no longer in the queue (given back, or its video removed)." in page
    assert f'href="/review/{nxt.pk}/" id="item-gone-next"' in page and 'href="/review/" id="item-gone-queue"' in page

    nxt.delete()  # nothing else held: only the way back to the queues
    alone = client.get(f"/review/{task.pk}/").content.decode()
    assert "item-gone-next" not in alone and 'href="/review/" id="item-gone-queue"' in alone


def test_opening_an_item_hidden_from_the_reviewer_is_still_a_bare_not_found(make_task, make_user):
    """The gone page must not tell a hidden item from a deleted one: an item that exists but whose video this
    reviewer may not see stays a 404 without the words."""
    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    restricted.allowed_groups.add(experts)
    task = make_task(queue=restricted)
    stranger = Client()
    stranger.force_login(make_user("moderator"))

    answer = stranger.get(f"/review/{task.pk}/")

    assert answer.status_code == 404 and "no longer in the queue" not in answer.content.decode()
