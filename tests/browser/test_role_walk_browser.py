"""What a role walk through the running app found on the review screen, looked at in Chromium at 1440x900
(screenshots in /work/shots/<worktree>/): a double press or a held key decided the next, unseen item."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.review.models import Review
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_review_browser import _task

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _violation(policy_version, title: str):  # type: ignore[no-untyped-def]
    """An item the model called a violation with a severity: "a" alone approves it."""
    return _task(
        policy_version,
        decision__label="色情低俗",
        decision__is_violation=True,
        decision__severity="medium",
        decision__video__title=title,
    )


@pytest.mark.django_db(transaction=True)
def test_a_double_press_or_a_held_key_never_decides_the_item_it_swapped_in(page, make_user, policy_version):
    """Walked: "a" pressed twice quickly approved the item and then the next one, swapped in at once and never
    seen; "a" held down (the key repeats) went on down the queue. The second press is ignored and said."""
    first = _violation(policy_version, "FIRST")
    second = _violation(policy_version, "SECOND")
    third = _violation(policy_version, "THIRD")
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")

    # A double tap: the second press lands on the item just swapped in. Both are sent in one go, as a quick
    # double tap is (two separate key presses could fall more than a double press apart on a loaded machine).
    page.evaluate(
        """() => { for (let i = 0; i < 2; i++) {
            document.dispatchEvent(new KeyboardEvent("keydown", { key: "a", bubbles: true }));
        } }"""
    )
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0 && window.reviewState().ready")
    page.wait_for_timeout(300)  # a second decision, had it been sent, would be on its way by now
    assert list(Review.objects.values_list("task_id", flat=True)) == [first.pk]
    assert page.locator("#review-screen").get_attribute("data-task") == str(second.pk)
    status = page.locator("#review-status").inner_text()
    assert f"Item #{second.pk} had only just appeared" in status
    page.screenshot(path=str(shots_dir() / "review-double-press-ignored.png"))

    # A held key: the first press decides, the key's repeats do nothing (here well apart, as a slow repeat rate).
    page.keyboard.down("a")
    page.wait_for_selector(f'#review-screen[data-task="{third.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    page.wait_for_timeout(300)
    page.keyboard.down("a")  # Playwright marks a second down without an up as a repeat
    page.keyboard.up("a")
    page.wait_for_timeout(300)
    assert sorted(Review.objects.values_list("task_id", flat=True)) == [first.pk, second.pk]
    assert page.locator("#review-screen").get_attribute("data-task") == str(third.pk)

    # A deliberate decision afterwards is taken as ever.
    page.keyboard.press("a")
    page.wait_for_url("**/review/")  # the queue is empty: back to the queue list
    assert Review.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_approving_a_violation_the_model_gave_no_severity_asks_for_one_before_moving_on(
    page, make_user, policy_version
):
    """Walked (the demo's evidence baseline gives no severity): "a" on its violation swapped the next item in, then
    brought this one back with "not recorded: choose its severity". The screen says so beside Approve, and "a"
    without a severity asks for one in place: nothing is sent, nothing moves."""
    first = _task(policy_version, decision__label="色情低俗", decision__is_violation=True, decision__severity="")
    second = _task(policy_version, decision__video__title="SECOND")
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")
    assert "no severity from the model: choose one below" in page.locator(".approve-row").inner_text()
    approve = page.locator("button[value=approve]").bounding_box()
    assert approve is not None and approve["height"] < 40  # one line: the hint beside it wraps, not the button

    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.keyboard.press("a")
    failure = page.locator(f'#review-screen[data-task="{first.pk}"] [data-review-failure]')
    failure.wait_for()
    assert "choose one (1 low, 2 medium, 3 high), then approve" in failure.inner_text()
    assert sent == [] and page.locator("#review-screen").get_attribute("data-task") == str(first.pk)
    page.screenshot(path=str(shots_dir() / "review-approve-needs-severity.png"))

    page.wait_for_timeout(300)  # apart from the refused press: not a double press
    page.keyboard.press("2")
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    assert Review.objects.get(task=first).severity == "medium"
