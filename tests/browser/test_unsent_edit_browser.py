"""A policy editor whose session ends while they edit loses nothing: the send lands on the sign-in page, and once
signed in again the editor opens with the edit put back and says so (static/workbench.js keeps it in the browser);
saving it clears what was kept, so the next visit opens clean. (SCREENSHOT_DIR keeps the screenshot.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation.policies.models import PolicyVersion
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def test_an_edit_sent_after_the_session_ended_is_back_after_signing_in(page, make_user, policy_version, tmp_path):
    editor = make_user("policy_editor", username="late-editor")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    sign_in(page, editor.username, screen=True)
    edit_url = f"/policies/{policy_version.policy_id}/edit/"
    page.goto(edit_url)
    name = page.locator('input[name="c0t0-name"]')
    name.fill("Crime, reworded before lunch")
    page.locator('form.policy-editor textarea[name="notes"]').fill("Clearer tag name")

    page.context.clear_cookies(name="sessionid")  # the session ends while the page is open
    with page.expect_navigation():
        page.get_by_role("button", name="Save as new draft").click()
    assert "/login/" in page.url
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == 1

    page.fill("input[name=username]", editor.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(edit_url)
    notice = page.locator("[data-unsent-notice]")
    assert notice.is_visible()
    assert "Put back your edit from" in notice.inner_text() and "it was sent but not saved" in notice.inner_text()
    assert notice.get_by_role("button", name="Discard").is_visible()
    assert name.input_value() == "Crime, reworded before lunch"
    assert page.locator('form.policy-editor textarea[name="notes"]').input_value() == "Clearer tag name"
    page.screenshot(path=str(shots / "policy-editor-unsent-restored.png"))

    with page.expect_navigation():
        page.get_by_role("button", name="Save as new draft").click()
    assert "Saved as draft" in page.content()
    draft = PolicyVersion.objects.filter(policy=policy_version.policy).order_by("-number").first()
    assert draft is not None and draft.taxonomy[0]["tags"][0]["name"] == "Crime, reworded before lunch"

    page.goto(edit_url)  # saved: nothing is put back any more
    assert page.locator("[data-unsent-notice]").count() == 0
    assert name.input_value() != "Crime, reworded before lunch"


def test_discard_puts_back_what_the_server_sent(page, make_user, policy_version):
    editor = make_user("policy_editor", username="discarding-editor")
    sign_in(page, editor.username)
    edit_url = f"/policies/{policy_version.policy_id}/edit/"
    page.goto(edit_url)
    name = page.locator('input[name="c0t0-name"]')
    original = name.input_value()
    name.fill("A change I do not want")
    page.goto(edit_url)  # left without sending
    assert name.input_value() == "A change I do not want"
    page.locator("[data-unsent-notice]").get_by_role("button", name="Discard").click()
    assert name.input_value() == original
    assert page.locator("[data-unsent-notice]").count() == 0
    page.goto(edit_url)
    assert name.input_value() == original
    assert page.locator("[data-unsent-notice]").count() == 0


def test_a_tag_added_before_the_session_ended_is_back_with_what_was_typed_in_it(page, make_user, policy_version):
    """The server draws the rows: a tag row added with "+ Add tag" is not on the editor opened afresh, so the kept
    edit is sent back once to be drawn (saving nothing), then said to be restored."""
    editor = make_user("policy_editor", username="adding-editor")
    sign_in(page, editor.username)
    edit_url = f"/policies/{policy_version.policy_id}/edit/"
    page.goto(edit_url)
    new_tag = f'input[name="c0t{len(policy_version.taxonomy[0]["tags"])}-key"]'
    with page.expect_navigation():
        page.get_by_role("button", name="+ Add tag").first.click()
    page.locator(new_tag).fill("新标签-未发送")

    page.context.clear_cookies(name="sessionid")
    with page.expect_navigation():
        page.get_by_role("button", name="Save as new draft").click()
    page.fill("input[name=username]", editor.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.locator("[data-unsent-notice]").wait_for()
    assert page.locator(new_tag).input_value() == "新标签-未发送"
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == 1  # drawn, not saved

    with page.expect_navigation():
        page.locator("[data-unsent-notice]").get_by_role("button", name="Discard").click()
    assert page.locator(new_tag).count() == 0  # the editor as the version has it
    assert page.locator("[data-unsent-notice]").count() == 0


def test_an_unsent_edit_is_put_back_only_for_the_editor_who_typed_it(page, make_user, policy_version, tmp_path):
    """The edit was kept per browser: a second editor signing in on the same browser after the first one's session
    ended was shown the first one's edit as "your unsent edit" (and saved it as theirs with one click). It is kept
    per signed-in user: the other editor opens the version as it is, the one who typed it gets it back; "Log out"
    drops the user's own kept edits."""
    first = make_user("policy_editor", username="first-editor")
    second = make_user("policy_editor", username="second-editor")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    page.set_viewport_size({"width": 1440, "height": 900})
    edit_url = f"/policies/{policy_version.policy_id}/edit/"
    name = page.locator('input[name="c0t0-name"]')

    sign_in(page, first.username)
    page.goto(edit_url)
    original = name.input_value()
    name.fill("First editor's wording, not sent")
    page.context.clear_cookies(name="sessionid")  # the first editor's session ends while the page is open

    sign_in(page, second.username)  # someone else signs in on the same browser
    page.goto(edit_url)
    assert page.locator("[data-unsent-notice]").count() == 0
    assert name.input_value() == original
    page.screenshot(path=str(shots / "policy-editor-unsent-not-for-another-user.png"))
    page.context.clear_cookies(name="sessionid")

    sign_in(page, first.username)  # the editor who typed it comes back: theirs is put back
    page.goto(edit_url)
    page.locator("[data-unsent-notice]").wait_for()
    assert name.input_value() == "First editor's wording, not sent"
    page.screenshot(path=str(shots / "policy-editor-unsent-back-for-its-editor.png"))

    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    sign_in(page, first.username)
    page.goto(edit_url)
    assert page.locator("[data-unsent-notice]").count() == 0
    assert name.input_value() == original
