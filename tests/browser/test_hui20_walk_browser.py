"""What the hui20 user walk found on screen, seen in Chromium (screenshots in /work/shots/<worktree>/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import SCREEN, shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

_REASONING = "The title promises a giveaway; the frames show a phone and a QR code to scan. " * 6
_STAGES = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


@pytest.mark.django_db(transaction=True)
def test_the_review_screen_leaves_the_reasoning_room_at_1024_and_keeps_its_columns_at_1440(
    page, make_user, policy_version
):  # type: ignore[no-untyped-def]
    """Walked at 1024x768: the decision form, under the reasoning in the right column, was 415 px high and left the
    model's reasoning a strip ~120 px high above it (the reader scrolled a box of five lines). Below 1200 px the form
    goes under both columns, across the screen; at 1440x900 it stays in the right column under the reasoning."""
    from moderation.review.services import review_queue_default
    from tests.browser.test_review_browser import _task

    review_queue_default()
    cot = [{"key": k, "title": k.replace("_", " "), "text": _REASONING, "evidence": []} for k in _STAGES]
    task = _task(policy_version, decision__cot=cot)
    sign_in(page, make_user("moderator").username)
    seen = {}
    for name, size in (("1024x768", {"width": 1024, "height": 768}), ("1440x900", SCREEN)):
        page.set_viewport_size(size)
        page.goto("/review/")
        page.keyboard.press("n")
        page.wait_for_url(f"**/review/{task.pk}/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots_dir() / f"hui20-review-{name}.png"))
        seen[name] = {
            part: page.locator(selector).bounding_box()
            for part, selector in (
                ("media", "#media"),
                ("reasoning", ".decide-info"),
                ("form", "#verdict"),
                ("release", "#verdict button:text-is('Release')"),
            )
        }
        assert page.evaluate("document.documentElement.scrollHeight - window.innerHeight") <= 1, name  # one screen

    narrow = seen["1024x768"]
    reasoning, form, release = narrow["reasoning"], narrow["form"], narrow["release"]
    assert reasoning["width"] >= 400, reasoning
    assert reasoning["height"] >= 300, reasoning  # it was 222 px, two thirds of it the verdict's header
    assert form["y"] >= reasoning["y"] + reasoning["height"], (form, reasoning)  # the form is under it, not beside
    assert release["y"] + release["height"] <= 768, release  # the decision controls are still in view

    wide = seen["1440x900"]
    assert wide["form"]["x"] > wide["media"]["x"] + wide["media"]["width"], wide  # beside the media, as before
    assert wide["reasoning"]["width"] >= 600 and wide["reasoning"]["height"] >= 300, wide
    assert wide["release"]["y"] + wide["release"]["height"] <= 900, wide
