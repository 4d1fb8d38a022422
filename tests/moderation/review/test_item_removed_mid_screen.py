"""A video deleted (the admin's delete) while a reviewer's verdict on it is on its way: the reviewer is told the item
is gone, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation.media.models import Video
from moderation.review.models import Review
from moderation.review.services import review_claim_next
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("background", [False, True])
def test_a_verdict_racing_the_deletion_of_its_video_is_told_the_item_is_gone(make_task, make_user, background):
    """The submit read the item before the delete committed, then waited on its row: the lock found no row and
    ``get`` raised DoesNotExist (a 500), and the refusal's ``refresh_from_db`` would have too."""
    task = make_task()
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == task.pk
    client = Client()
    client.force_login(alice)
    headers = {"HTTP_X_REVIEW_BACKGROUND": "1"} if background else {}

    raced = race(
        lambda: Video.objects.filter(pk=task.decision.video_id).delete(),
        lambda: client.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}, **headers),
    )

    assert raced.second_waited
    assert not isinstance(raced.second, Exception), raced.second
    if background:
        assert raced.second.status_code == 409
        answer = raced.second.json()
        assert answer["ok"] is False and answer["still_yours"] is False
        assert answer["error"].startswith("This item is no longer in the queue")
    else:
        assert raced.second.status_code == 302 and raced.second["Location"] == "/review/"
        shown = client.get("/review/").content.decode()
        assert "This item is no longer in the queue" in shown
    assert not Review.objects.exists()
