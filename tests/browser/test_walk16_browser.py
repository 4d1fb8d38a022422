"""What the sixteenth role walk through the running app found in the browser, seen in Chromium at 1440x900 and at
200 % zoom (screenshots in /work/shots/<worktree>/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import SCREEN, shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

ZOOMED = {"width": 720, "height": 450}  # 1440x900 at 200 % zoom, in CSS pixels
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.django_db(transaction=True)
def test_the_policy_editor_keeps_their_place_and_reaches_every_save_at_200_percent(page, make_user, policy_version):
    """Walked as the policy editor: saving the 28th tag of the vocabulary opened the list again at its top, "Saved"
    up there and the row a few screens below, out of sight. At 200 % zoom the vocabulary's Save buttons and the
    taxonomy editor's "high" severities ran out of the window (a horizontal scroll to reach them)."""
    from moderation.tagging.models import Tag
    from moderation.tagging.services import tags_import

    tags_import(lines=[f"标签{i:02d}\talias{i}" for i in range(30)])
    editor = make_user("policy_editor")
    sign_in(page, editor.username, screen=True)
    page.goto(reverse("moderation:tag_vocabulary"))
    row = page.locator("tbody tr, table.vocabulary-table tr").filter(has=page.locator("input[name=aliases]")).nth(27)
    aliases = row.locator("input[name=aliases]")
    name = row.locator("input[name=name]").input_value()
    aliases.scroll_into_view_if_needed()
    aliases.fill("alias-renamed")
    with page.expect_navigation():
        aliases.press("Enter")
    assert Tag.objects.get(name=name).aliases == ["alias-renamed"]
    saved = page.locator("[data-tag-saved]")
    assert saved.inner_text() == f"Saved “{name}”."
    assert page.evaluate("window.scrollY") > 0
    box = saved.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"], box
    page.screenshot(path=str(shots_dir() / "walk16-vocabulary-saved-row.png"))
    page.reload()  # said once
    assert page.locator("[data-tag-saved]").count() == 0

    page.set_viewport_size(ZOOMED)
    page.goto(reverse("moderation:tag_vocabulary"))
    assert page.evaluate(OVERFLOW) <= 0
    page.goto(reverse("moderation:policy_edit", args=[policy_version.policy.pk]))
    assert page.evaluate(OVERFLOW) <= 0
    high = page.locator("td.severities label").filter(has_text="high").first.bounding_box()
    assert high is not None and high["x"] + high["width"] <= ZOOMED["width"], high


@pytest.mark.django_db(transaction=True)
def test_a_refused_correction_stage_keeps_the_models_original_beside_it(page, make_user, policy_version):
    """Walked as a labeler: a new label with the final judgment still naming the old one was refused on that stage,
    and the reason, across both columns, pushed "Model's original" below it: the text to compare was no longer beside
    the one to rewrite."""
    from tests.factories import DecisionFactory

    cot = [
        {"key": k, "title": k.replace("_", " ").capitalize(), "text": f"model {k}", "evidence": []}
        for k in ("content_extraction", "analysis", "intermediate_check", "user_feedback")
    ]
    cot.append({"key": "final_judgment", "title": "Final judgment", "text": "Violation: 引导私下交易.", "evidence": []})
    decision = DecisionFactory(policy_version=policy_version, label="引导私下交易", is_violation=True, cot=cot)
    sign_in(page, make_user("labeler").username, screen=True)
    page.goto(reverse("annotation:correction_edit", args=[decision.pk]))
    page.select_option("select[name=label]", "正向")
    with page.expect_navigation():
        page.click("button[value=submit]")
    stage = page.locator('[data-stage="final_judgment"]')
    error = stage.locator("#stage-error-final_judgment")
    assert "concludes 引导私下交易" in error.inner_text()
    typed = stage.locator("textarea").bounding_box()
    original = stage.locator(".original").bounding_box()
    said = error.bounding_box()
    assert typed and original and said
    page.screenshot(path=str(shots_dir() / "walk16-correction-refused-stage.png"))
    assert abs(original["y"] - typed["y"]) < 30, (typed, original)  # side by side, as every other stage
    assert original["x"] > typed["x"] + typed["width"]
    assert said["y"] >= typed["y"] + typed["height"] and said["x"] < original["x"]  # the reason under the text


@pytest.mark.django_db(transaction=True)
def test_e_in_a_queue_without_an_escalation_queue_says_why_nothing_happened(page, make_user, policy_version):
    """Walked as a moderator: the queue screen lists "e escalate"; on an item of the demo's Default queue (no
    escalation queue) "e" did nothing at all, with no word why."""
    from tests.browser.test_review_browser import _task

    task = _task(policy_version)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.wait_for_load_state("networkidle")
    said = page.locator('[data-hotkey-absent="e"]')
    assert not said.is_visible()
    page.keyboard.press("e")
    assert said.is_visible()
    assert said.inner_text().startswith(f"No escalation from “{task.queue.name}”: it has no senior queue.")
    page.screenshot(path=str(shots_dir() / "walk16-no-escalation-queue.png"))
    assert page.url.endswith(f"/review/{task.pk}/")  # nothing else happened
