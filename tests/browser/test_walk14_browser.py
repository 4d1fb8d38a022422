"""What the fourteenth walk through the running app found in the browser, seen in Chromium at 1440x900
(screenshots in /work/shots/<worktree>/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.review.models import Review
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_review_browser import _task
from tests.factories import ReviewFactory

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_an_override_the_server_would_refuse_is_said_in_place_before_moving_on(page, make_user, policy_version):
    """Walked: "o", a violation label, Enter without a severity swapped the next item in, then brought this one
    back "not recorded: choose its severity" (as Approve did before hwalk13); an override with the model's own
    label did the same. Both are said beside the verdict: nothing is sent, nothing moves."""
    first = _task(policy_version, decision__label="正向", decision__video__title="FIRST")
    second = _task(policy_version, decision__video__title="SECOND")
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    failure = page.locator(f'#review-screen[data-task="{first.pk}"] [data-review-failure]')

    page.keyboard.press("o")
    page.keyboard.type("正向")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    failure.wait_for()
    assert "正向 is the model's own label: approve (a) to keep it" in failure.inner_text()

    page.locator("[data-picker-filter]").fill("")
    page.locator("[data-picker-filter]").focus()
    page.keyboard.type("色情低俗")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)  # apart from the refused press: not a double press
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-review-failure]').textContent.includes('is a violation')", timeout=5000
    )
    assert "“色情低俗” is a violation: choose its severity (1 low, 2 medium, 3 high), then override." in (
        failure.inner_text()
    )
    assert sent == [] and page.locator("#review-screen").get_attribute("data-task") == str(first.pk)
    page.screenshot(path=str(shots_dir() / "review-override-needs-severity.png"))

    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    review = Review.objects.get(task=first)
    assert (review.verdict, review.label, review.severity) == ("override", "色情低俗", "high")


@pytest.mark.django_db(transaction=True)
def test_the_vocabulary_shows_a_tags_aliases_whole_and_names_its_count(page, make_user):
    """Walked at 1440x900: the aliases box (size 20) cut a tag's aliases after two or three ("phone, phones,
    smartpho") in a column three times as wide, and the last number column was headed only "used"."""
    from moderation.tagging.services import tags_import

    tags_import(lines=["手机\tphone, phones, smartphone, 手机壳, mobile"])
    sign_in(page, make_user("policy_editor").username, screen=True)
    page.goto("/tags/vocabulary/")
    box = page.get_by_label("aliases of 手机")
    assert box.input_value() == "phone, phones, smartphone, 手机壳, mobile"
    assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), "the aliases are cut"
    header = page.locator("table.vocabulary-table th").nth(4)
    assert header.inner_text() == "videos tagged" and "videos" in (header.get_attribute("title") or "")
    page.screenshot(path=str(shots_dir() / "vocabulary-aliases-whole.png"))


@pytest.mark.django_db(transaction=True)
def test_a_panel_refreshing_itself_keeps_the_keyboard_where_it_was(page, make_user, policy_version):
    """Walked: on the review queues, a keyboard user on a queue's link or "Claim next" lost the focus to the page's
    body each time the counts refreshed (every 15 s): the next Tab started from the top bar again."""
    _task(policy_version)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    link = page.locator('#queue-stats tr[data-queue="default"] a')
    link.focus()
    page.evaluate("document.querySelector('#queue-stats').dataset.old = '1'")
    page.evaluate("htmx.ajax('GET', '/review/', {target: '#queue-stats', swap: 'outerHTML'})")  # what the poll does
    page.wait_for_function("() => !document.querySelector('#queue-stats').dataset.old")
    page.wait_for_timeout(300)  # settled
    assert page.evaluate("document.activeElement.closest('tr') && document.activeElement.closest('tr').dataset.queue")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Default"
    assert page.evaluate("document.activeElement.isConnected && document.activeElement !== document.body")
    page.keyboard.press("Tab")  # on to the row's next control, not the top bar
    assert page.evaluate("document.activeElement.closest('#queue-stats') !== null")


@pytest.mark.django_db(transaction=True)
def test_the_adjudication_screen_shows_the_reviewers_severity_and_decide_on_load(page, make_user, policy_version):
    """Walked at 1440x900: the Outcome form (label and Decide) sat ~700 px below the fold, under the feedback
    and the model's whole reasoning, and the review row named the verdict but not the reviewer's severity."""
    from annotation.models import Adjudication

    long = "The seller shows the product, names a price and asks viewers to message privately to pay. " * 4
    cot = [
        {"key": k, "title": k.replace("_", " "), "text": long, "evidence": []}
        for k in ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")
    ]
    task = _task(policy_version, status="done", decision__video__title="APPEALED", decision__cot=cot)
    ReviewFactory(task=task, label="引导私下交易", severity="high", reviewer=make_user("moderator"))
    adjudication = Adjudication.objects.create(
        video=task.decision.video,
        decision=task.decision,
        kind="appeal_overturned",
        reason="The model said 正向, but 1 appeal against the moderation succeeded.",
    )
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto(f"/annotation/adjudications/{adjudication.pk}/")
    review = page.locator('[data-outcome="review"]')
    assert "引导私下交易" in review.inner_text() and "severity high" in review.inner_text()
    decide = page.get_by_role("button", name="Decide")
    box = decide.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    assert page.evaluate("window.scrollY") == 0
    # The evidence stays on the page: the model's reasoning below the form, the media beside it.
    assert page.locator("#model-verdict").is_visible() and "asks viewers to message privately" in (
        page.locator("#model-verdict").inner_text()
    )
    page.screenshot(path=str(shots_dir() / "adjudication-decide-in-view.png"))


@pytest.mark.django_db(transaction=True)
def test_the_policy_table_editor_shows_a_long_keyword_list_whole(page, make_user, policy_version):
    """Walked at 1440x900: a tag's long keyword list was cut at two lines in its box (the rest scrolled inside a
    2.3 rem textarea). The box now grows with its keywords, and the table still fits the window."""
    taxonomy = policy_version.taxonomy
    taxonomy[0]["tags"][0]["keywords"] = [f"keyword number {i}" for i in range(30)]
    type(policy_version).objects.filter(pk=policy_version.pk).update(taxonomy=taxonomy)
    sign_in(page, make_user("policy_editor").username, screen=True)
    page.goto(f"/policies/{policy_version.policy_id}/edit/")
    box = page.locator('textarea[name="c0t0-keywords"]')
    assert "keyword number 29" in box.input_value()
    assert box.evaluate("el => el.scrollHeight <= el.clientHeight + 1"), "the keywords are cut off on load"
    box.fill(", ".join(f"keyword number {i}" for i in range(45)))  # and as more are typed
    assert box.evaluate("el => el.scrollHeight <= el.clientHeight + 1"), "the keywords typed are cut off"
    table = page.locator("table.tag-rows").first
    fieldset = page.locator("fieldset.category").first
    assert table.evaluate("t => t.getBoundingClientRect().right") <= fieldset.evaluate(
        "f => f.getBoundingClientRect().right"
    )
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    # The other columns keep their room: the key, name and criteria fields are not squeezed by the long list.
    for name in ("c0t0-key", "c0t0-name", "c0t0-criteria"):
        width = page.locator(f'[name="{name}"]').evaluate("el => el.getBoundingClientRect().width")
        assert width >= 100, (name, width)
    severities = page.locator("td.severities").first
    assert severities.evaluate("td => td.scrollWidth <= td.clientWidth"), "the severities spill into Remove"
    remove = page.locator("table.tag-rows th").nth(5)
    lines = "th => { const r = document.createRange(); r.selectNodeContents(th); return r.getClientRects().length; }"
    assert remove.evaluate(lines) == 1, "the Remove heading breaks in two"
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "policy-editor-keywords-whole.png"))
