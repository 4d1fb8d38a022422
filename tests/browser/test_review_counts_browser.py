"""What the review screen says about its queue, repainted as the moderator works (Chromium)."""

from __future__ import annotations

import os

import pytest

from tests.browser.test_review_browser import _login, _task

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_the_waiting_count_follows_each_decision(page, make_user, policy_version):
    """Seen in Chromium: "2 waiting" stayed after a decision (the next screen was fetched before it, and the
    count came from the queue list's cache), however many items had been claimed since."""
    tasks = [_task(policy_version, priority=10 - i, decision__video__title=f"ITEM {i}") for i in range(5)]
    _login(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")  # claims the first, and the second ahead: three wait
    page.wait_for_url(f"**/review/{tasks[0].pk}/")
    assert page.locator("[data-waiting]").inner_text() == "3 waiting"
    page.wait_for_function("window.reviewState && window.reviewState().ready")
    page.keyboard.press("a")  # the second shows; the third is claimed ahead: two wait
    page.wait_for_selector(f'#review-screen[data-task="{tasks[1].pk}"]')
    page.wait_for_function("window.reviewState().pending === 0")
    page.wait_for_function("document.querySelector('[data-waiting]').textContent === '2 waiting'")
    page.wait_for_function("window.reviewState().ready")
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{tasks[2].pk}"]')
    page.wait_for_function("document.querySelector('[data-waiting]').textContent === '1 waiting'")
    page.reload()  # a fresh screen counts now, not from the queue list's cache
    assert page.locator("[data-waiting]").inner_text() == "1 waiting"
