"""Walk hwalk21 in Chromium at 1440x900: the review screen's floating "Keys" help, once opened, stayed open over the
model verdict's heading whatever the moderator pressed or clicked. It closes as the header's "More" menu does: Escape
(the focus back on its summary) or a click outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.factories import ReviewTaskFactory

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_the_review_screens_keys_help_closes_with_escape_or_a_click_outside(page, make_user, policy_version):
    from moderation.review.services import review_claim_next

    ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    moderator = make_user("moderator")
    task = review_claim_next(user=moderator)
    assert task is not None
    sign_in(page, moderator.username, screen=True)
    page.goto(f"/review/{task.pk}/")
    keys = page.locator("details.keys")

    keys.locator("summary").click()
    page.wait_for_function("() => document.querySelector('details.keys').open")
    page.screenshot(path=str(shots_dir() / "review-keys-open.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('details.keys').open")
    assert page.evaluate("() => document.activeElement.closest('details.keys') !== null")

    keys.locator("summary").click()
    page.wait_for_function("() => document.querySelector('details.keys').open")
    page.locator("h1").first.click()
    page.wait_for_function("() => !document.querySelector('details.keys').open")
    # Nothing was decided on the way: Escape and the click only closed the help.
    task.refresh_from_db()
    assert task.status == task.Status.CLAIMED
