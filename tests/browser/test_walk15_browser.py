"""What the fifteenth walk through the running app found in the browser, seen in Chromium at 1440x900
(screenshots in /work/shots/<worktree>/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_the_tag_screen_keeps_submit_in_the_window_under_a_dozen_chips(page, make_user, policy_version):
    """Walked at 1440x900: the demo's tag items had 12 chips, which put "Submit tags and next" (and the line naming its
    keys) 75 px under the fold; a new tagger ticked tags and saw no way to finish. The row stays at the window's foot."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import TagCandidate, VideoTag
    from moderation.tagging.services import tag_set_default
    from tests.factories import TagFactory, TagTaskFactory

    # As the demo's items: a dozen chips, each with its evidence line.
    tags = [TagFactory(name=f"标签{i}") for i in range(12)]
    task = TagTaskFactory(
        decision__policy_version=policy_version,
        suggestions=[(tag, 0.5 - i / 100) for i, tag in enumerate(tags)],
        suggestions__sources=["embedding", "related", "text"],
    )
    for tag in tags:
        TagCandidate.objects.create(
            video=task.decision.video, tag=tag, source="text", score=0.5,
            evidence=[{"field": "title", "segment": None, "text": "Cheap phones, DM me"}],
        )  # fmt: skip
    tagger = make_user("moderator")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, tagger.username)
    page.goto(reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}")
    submit = page.get_by_role("button", name="Submit tags and next")
    box = submit.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900, box
    last_chip = page.locator("#tag-chips li").last.bounding_box()
    assert last_chip is not None and last_chip["y"] > 900  # the chips do run on below the window
    page.screenshot(path=str(shots_dir() / "tag-submit-in-window.png"))
    page.keyboard.press("1")
    with page.expect_navigation():
        submit.click()
    assert list(VideoTag.objects.filter(video=task.decision.video).values_list("tag__name", flat=True)) == ["标签0"]


@pytest.mark.django_db(transaction=True)
def test_an_item_decided_in_one_tab_is_said_so_in_the_other(page, make_user, policy_version):
    """Walked in two tabs: the item approved in the first, then overridden in the second, came back in the second
    as "Not recorded: Already reviewed … Your claim on this item is lost", as if another reviewer had taken it."""
    from moderation.review.models import Review
    from tests.browser.test_review_browser import _task

    first = _task(policy_version, priority=2, decision__label="正向", decision__video__title="FIRST")
    _task(policy_version, priority=1, decision__video__title="SECOND")
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    other = page.context.new_page()
    other.set_viewport_size({"width": 1440, "height": 900})
    other.goto(f"/review/{first.pk}/")
    other.wait_for_function("() => window.reviewState && window.reviewState().ready")

    page.keyboard.press("a")  # the first tab decides
    page.wait_for_function("() => window.reviewState().pending === 0")
    other.bring_to_front()
    other.keyboard.press("o")
    other.keyboard.type("色情低俗")
    other.keyboard.press("ArrowDown")
    other.keyboard.press("3")
    other.keyboard.press("Enter")
    failure = other.locator(f'#review-screen[data-task="{first.pk}"] [data-review-failure]')
    other.wait_for_function("() => document.querySelector('[data-review-failure]:not([hidden])') !== null")
    said = failure.inner_text()
    assert said.startswith("You already decided this item at ")
    assert "approve model verdict (正向). Nothing more was recorded." in said
    assert "claim on this item is lost" not in said and "Back to the review queues" in said
    other.screenshot(path=str(shots_dir() / "review-decided-in-another-tab.png"))
    assert Review.objects.get(task=first).verdict == "approve"
