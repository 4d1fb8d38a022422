"""What a walk through every role found in Chromium at 1440x900 and at 200% zoom (720x450 CSS pixels): the page's
messages sat outside every landmark, and the model registry was wider than the window at 200% zoom (saving the tags
on the review screen, which dropped the keyboard focus, is tested with the tag screens: tests/moderation/tagging)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.test_accessibility import _violations
from tests.browser.test_review_browser import _login, _task

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_a_page_with_a_message_and_a_refused_request_has_no_axe_violation(page, make_user, policy_version):
    """After an action, its message ("Item #N is back in the queue.") was the page's one axe violation (content
    outside every landmark); a refused htmx request's list (role="alert" on the <ul>) lost its list semantics."""
    task = _task(policy_version)
    _login(page, make_user("moderator").username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    with page.expect_navigation():
        page.click("button:text-is('Release')")
    assert f"Item #{task.pk} is back in the queue." in page.locator("ul.messages").inner_text()
    assert _violations(page) == []
    page.evaluate("showRequestError('The server refused this (HTTP 400).')")
    assert page.locator("[role=alert] ul.messages[data-request-errors] li").inner_text().startswith("The server")
    assert _violations(page) == []
