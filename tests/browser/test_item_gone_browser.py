"""A reviewer whose item's video was deleted while its screen was open presses "approve" (Chromium, 1440x900): they
read "This item is no longer in the queue…" on their screen, with a link back to the queue for their next item, not
a bare 404 page.
``SHOTS_DIR`` set: a screenshot there."""

from __future__ import annotations

import os

import pytest

from moderation.media.models import Video
from moderation.review.models import Review
from moderation.review.services import review_claim_next
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_concurrent_edits_browser import _shot
from tests.browser.test_review_browser import _task

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_approving_an_item_whose_video_was_deleted_meanwhile_says_so(page, make_user, policy_version):
    item = _task(policy_version, decision__video__title="Deleted while open")
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == item.pk
    sign_in(page, alice.username, screen=True)
    page.goto(f"/review/{item.pk}/")
    page.wait_for_selector(f'#review-screen[data-task="{item.pk}"]')

    Video.objects.filter(pk=item.decision.video_id).delete()  # the admin's delete, the screen still open
    page.get_by_role("button", name="Approve model verdict").click()

    # The screen sends the verdict in the background: the answer (409, "still_yours": false) is shown in place,
    # with the way on.
    way_on = page.get_by_role("link", name="Back to the review queues for your next item")
    way_on.wait_for()
    assert "This item is no longer in the queue" in page.locator("#review-screen").inner_text()
    _shot(page, "item-gone-before-submit")
    with page.expect_navigation():
        way_on.click()
    assert page.url.endswith("/review/") and page.get_by_role("button", name="Claim next").count() >= 1
    assert not Review.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_reloading_an_item_whose_video_was_deleted_shows_the_words_and_the_way_back(page, make_user, policy_version):
    """Reloading the item's page after its video was deleted was a bare 404 "Not found"; it now says the item is no
    longer in the queue and links the queues (and the reviewer's next held item, when there is one)."""
    item = _task(policy_version, decision__video__title="Deleted, then reloaded")
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == item.pk
    sign_in(page, alice.username, screen=True)
    page.goto(f"/review/{item.pk}/")
    page.wait_for_selector(f'#review-screen[data-task="{item.pk}"]')

    Video.objects.filter(pk=item.decision.video_id).delete()
    answer = page.reload()

    assert answer is not None and answer.status == 410
    assert "This item is no longer in the queue (given back, or its video removed)." in page.inner_text("#item-gone")
    _shot(page, "item-gone-reloaded")
    with page.expect_navigation():
        page.get_by_role("link", name="Back to the review queues").click()
    assert page.url.endswith("/review/")
