"""A policy editor in Chromium at 1440x900 adds a tag whose key another tag already has: the refused form opens
focused on the key typed, marked invalid and described by the message beside it, and saves once the key is changed.
(SCREENSHOT_DIR keeps the screenshots.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation.policies.models import PolicyVersion
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def test_a_key_used_twice_opens_the_editor_focused_on_the_key_typed(page, make_user, policy_version, tmp_path):
    editor = make_user("policy_editor", username="rubric-editor")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    sign_in(page, editor.username, screen=True)
    page.goto(f"/policies/{policy_version.policy_id}/edit/")
    with page.expect_navigation():
        page.get_by_role("button", name="+ Add tag").nth(2).click()  # the third category's
    page.locator('input[name="c2t4-key"]').fill("违法犯罪")  # the first category's first tag has it
    page.locator('input[name="c2t4-name"]').fill("Crime, again")
    page.locator('textarea[name="c2t4-keywords"]').fill("crime")
    with page.expect_navigation():
        page.get_by_role("button", name="Save as new draft").click()

    # autofocus is applied when the browser next renders, which can come after the load event: wait for it.
    page.wait_for_function("() => document.activeElement.name === 'c2t4-key'", timeout=5000)
    key = page.locator('input[name="c2t4-key"]')
    assert key.get_attribute("aria-invalid") == "true"
    beside = page.locator(f"#{key.get_attribute('aria-describedby')}")
    assert beside.inner_text() == "Key '违法犯罪' is already used by Category 1 (法律与社会安全), tag 1 (违法犯罪)."
    assert beside.is_visible() and key.is_visible()  # the field and its message are in the window, not below it
    assert page.locator('[aria-invalid="true"]').count() == 1
    assert "The draft was not saved" in page.locator("#editor-errors").inner_text()
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == 1
    page.screenshot(path=str(shots / "policy-editor-duplicate-key.png"))
    assert _violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1

    # Typing over the focused field fixes it: the draft is saved.
    page.keyboard.press("Control+A")
    page.keyboard.type("违法犯罪-二次")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter in a text field saves (the form's first button)
    assert "Saved as draft" in page.content()
    draft = PolicyVersion.objects.filter(policy=policy_version.policy).order_by("-number").first()
    assert draft is not None and "违法犯罪-二次" in {t["key"] for t in draft.taxonomy[2]["tags"]}


def test_adding_a_tag_or_a_category_opens_the_editor_on_the_new_row(page, make_user, policy_version, tmp_path):
    """Walked in Chromium at 1440x900: "+ Add tag" under the last category re-rendered the editor at its top with
    nothing focused, so the blank row it added was a screen and a half below, out of sight."""
    editor = make_user("policy_editor", username="rubric-adder")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    sign_in(page, editor.username, screen=True)
    page.goto(f"/policies/{policy_version.policy_id}/edit/")
    last = len(policy_version.taxonomy) - 1
    new_tag = len(policy_version.taxonomy[last]["tags"])
    # Chromium's own accessible names say which row a control is of ("Tag 1 key" was alike in every category).
    first = "tag 1 “Criminal behaviour” in category 1 “Law & social safety”"
    assert page.get_by_role("textbox", name=f"Key of {first}", exact=True).count() == 1
    assert page.get_by_role("checkbox", name=f"high severity allowed for {first}", exact=True).count() == 1
    assert (
        page.get_by_role("checkbox", name="remove this category (category 4 “IP & labelling”)", exact=True).count() == 1
    )

    with page.expect_navigation():
        page.get_by_role("button", name="+ Add tag").nth(last).click()

    page.wait_for_function(f"() => document.activeElement.name === 'c{last}t{new_tag}-key'", timeout=5000)
    assert page.locator(f'input[name="c{last}t{new_tag}-key"]').is_visible()
    assert page.evaluate("window.scrollY") > 0  # scrolled down to it, not left at the top
    page.screenshot(path=str(shots / "policy-editor-tag-added.png"))
    page.keyboard.type("新标签")  # typing goes straight into the new row

    with page.expect_navigation():
        page.get_by_role("button", name="+ Add category").click()

    new_category = last + 1
    page.wait_for_function(f"() => document.activeElement.name === 'c{new_category}-key'", timeout=5000)
    assert page.locator(f'input[name="c{new_category}-key"]').is_visible()
    assert page.locator(f'input[name="c{last}t{new_tag}-key"]').input_value() == "新标签"  # kept across the re-render

    # Walk hwalk19: at 1024 px the three severities ran on into the Remove column, its checkbox drawn over "high"
    # (a click meant for "high" could tick Remove), and its heading read "Rem/ove". They wrap in their column now.
    page.set_viewport_size({"width": 1024, "height": 768})
    gaps = page.evaluate(
        """() => [...document.querySelectorAll('.tag-rows tbody tr')].filter((r) => r.querySelector('td.severities'))
             .map((r) => r.querySelector('input[name$=-remove]').getBoundingClientRect().left
                         - [...r.querySelectorAll('td.severities label')].pop().getBoundingClientRect().right)"""
    )
    assert gaps and min(gaps) > 0, gaps
    heading_lines = page.evaluate(
        """() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('.tag-rows th:nth-child(6)'));
                   return r.getClientRects().length; }"""
    )
    assert heading_lines == 1
