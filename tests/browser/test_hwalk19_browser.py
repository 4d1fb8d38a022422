"""Walk hwalk19, the tag screen by keyboard in Chromium at 1440x900: Enter on a focused button (a search match, a
chip's "evidence") did not do what that button does: the screen's Enter hotkey submitted the tag item instead. The
matches are reached with ↓ and a match already ticked says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_hux16_gaps_browser import _tag_task

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_tag_search_matches_by_arrows_and_enter_adds_without_submitting(page, make_user, policy_version):
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import VideoTag
    from moderation.tagging.services import tag_set_default

    task = _tag_task(policy_version)
    tagger = make_user("moderator")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    sign_in(page, tagger.username, screen=True)
    task_url = reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}"
    page.goto(task_url)
    search = page.locator("[data-tag-search]")
    page.keyboard.press("/")
    page.keyboard.type("搜索")
    page.wait_for_selector("[data-tag-results] [data-add-tag]")

    page.keyboard.press("ArrowDown")  # from the box to the first match
    assert page.evaluate("() => document.activeElement.dataset.tagName") == "搜索到的标签"
    page.keyboard.press("ArrowUp")  # and back
    assert page.evaluate("() => document.activeElement.matches('[data-tag-search]')")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # adds the match: the item is not submitted
    added = page.locator("#tag-chips [data-chip]", has=page.locator(".chip-name", has_text="搜索到的标签"))
    added.wait_for()
    assert added.locator("input[name=tag]").is_checked()
    assert page.url.endswith(task_url) and not VideoTag.objects.filter(video=task.decision.video).exists()
    assert page.evaluate("() => document.activeElement.matches('[data-tag-search]')") and search.input_value() == ""

    # Searched again, the match already ticked says so.
    page.keyboard.type("搜索")
    page.wait_for_selector("[data-tag-results] [data-add-tag] [data-ticked]")
    # Enter on a focused button outside the search does what the button does too: Release releases the item.
    with page.expect_navigation():
        page.get_by_role("button", name="Release").focus()
        page.keyboard.press("Enter")
    task.refresh_from_db()
    assert task.claimed_by_id is None and not VideoTag.objects.filter(video=task.decision.video).exists()
