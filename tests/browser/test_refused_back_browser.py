"""After a decision the server refused (the claim was lost while the next item was already on screen), the item
comes back and one Back leaves it for the page before: the refusal leaves no second history entry for the same
item (static/review.js went from the next item's entry to the decided one's by overwriting, not by going back)."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from moderation.review.models import Review, ReviewTask
from moderation.review.services import review_claim_next
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_review_browser import _task

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_back_once_after_a_refused_decision_leaves_the_item(page, make_user, policy_version):
    first = _task(policy_version, priority=2, decision__is_violation=True, decision__severity="medium")
    _task(policy_version, priority=1, decision__is_violation=True, decision__severity="medium")
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")  # the next item is fetched ahead
    history_length = page.evaluate("history.length")

    # The claim lapses and another moderator takes the item: the decision is refused after the screen moved on.
    ReviewTask.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert review_claim_next(user=make_user("moderator"), queue=first.queue) == first
    page.click("button[value=approve]")
    page.wait_for_selector(f"#review-screen[data-task='{first.pk}'][data-claim-lost]")
    page.wait_for_function(f"() => location.pathname === '/review/{first.pk}/' && window.reviewState().pending === 0")
    assert "Your claim on this item is lost" in page.locator("[data-review-failure]").inner_text()
    assert not Review.objects.exists()

    page.go_back()
    page.wait_for_url("**/review/")  # the queue page it was opened from, at the first press
    assert page.locator("#review-screen").count() == 0
    assert page.evaluate("history.length") == history_length + 1  # only the next item's entry, ahead
