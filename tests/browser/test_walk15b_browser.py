"""Findings of the fifteenth walk left open (hwalk15 rows 12, 14, 21), checked in Chromium (screenshots in
/work/shots/<worktree>/; SHOT_PHASE names them before/after)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _shot(name: str) -> str:
    where = Path(os.environ.get("SHOTS_DIR", "/work/shots")) / Path.cwd().name
    where.mkdir(parents=True, exist_ok=True)
    return str(where / f"{name}-{os.environ.get('SHOT_PHASE', 'after')}.png")


@pytest.mark.django_db(transaction=True)
def test_the_policy_table_editor_shows_long_english_names_whole(page, make_user, policy_version):
    """Walked at 1440x900 (row 14): "Offensive speech, cyberbu", "Hazardous / prohibited goo": the name column was
    too narrow for the seed taxonomy's English names (up to 40 characters)."""
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, make_user("policy_editor").username)
    page.goto(f"/policies/{policy_version.policy_id}/edit/")
    names = page.locator('.tag-rows input[name$="-name"], .tag-rows input[name$="-key"]')  # keys kept whole too
    assert names.count() > 10
    cut = names.evaluate_all("els => els.filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.value)")
    page.locator("fieldset.category").nth(1).screenshot(path=_shot("pe-edit-names"))
    assert cut == [], cut
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1


@pytest.mark.django_db(transaction=True)
def test_back_to_queue_stays_on_the_review_headers_title_row_at_1024(page, make_user, policy_version):
    """Walked at 1024x768 (row 21): "Back to queue" wrapped to a line of its own under the review header's facts."""
    from tests.browser.test_review_browser import _task

    _task(policy_version, decision__video__title="【重要通知】" + "这是一个非常非常长的中文标题" * 4)
    page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url("**/review/*/")
    back = page.locator(".review-head a.back").bounding_box()
    facts = page.locator(".review-head .facts").bounding_box()
    title = page.locator(".review-head h1").bounding_box()
    page.screenshot(path=_shot("review-head-1024"))
    assert back and facts and title
    assert back["height"] < 30, back  # one line
    assert back["y"] < facts["y"], (back, facts)  # not a line of its own below the facts
    assert back["x"] >= title["x"] + title["width"] - 1  # beside the title, to its right


@pytest.mark.django_db(transaction=True)
def test_ticks_sent_when_the_session_had_expired_come_back_after_signing_in_again(page, make_user, policy_version):
    """Walked (row 12): the session expired on the tag screen; the submit was refused and the ticked chips were lost
    (the refusal page echoes typed text only). The tag form keeps its ticks as the policy editor keeps an edit."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import VideoTag
    from moderation.tagging.services import tag_set_default
    from tests.browser.signin import PASSWORD
    from tests.factories import TagTaskFactory

    task = TagTaskFactory(
        decision__policy_version=policy_version, suggestions=[(f"标签{i}", 0.3 - i / 100) for i in range(4)]
    )
    tagger = make_user("moderator")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, tagger.username)
    task_url = reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}"
    page.goto(task_url)
    boxes = page.locator('#tag-chips input[name="tag"]')
    assert [boxes.nth(i).is_checked() for i in range(4)] == [False] * 4
    boxes.nth(1).check()
    boxes.nth(3).check()
    page.screenshot(path=_shot("tag-ticked"))

    page.context.clear_cookies(name="sessionid")  # the session ends while the page is open
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()
    assert not VideoTag.objects.filter(video=task.decision.video).exists()
    page.screenshot(path=_shot("tag-session-expired"))
    if "/login/" not in page.url:
        page.goto("/login/")
    page.fill("input[name=username]", tagger.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(task_url)
    page.locator("[data-unsent-notice]").wait_for()
    assert [boxes.nth(i).is_checked() for i in range(4)] == [False, True, False, True]
    page.screenshot(path=_shot("tag-ticks-restored"))
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()
    assert sorted(VideoTag.objects.filter(video=task.decision.video).values_list("tag__name", flat=True)) == [
        "标签1",
        "标签3",
    ]
