"""What the seventeenth role walk through the running app found in the browser, seen in Chromium at 1440x900
(screenshots in /work/shots/<worktree>/; the server-drawn half is in tests/hardening/test_walk17_findings.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

AXE_URL = "/static/vendor/axe-core/axe.min.js"


@pytest.mark.django_db(transaction=True)
def test_a_decided_item_opened_again_has_no_countdown_nor_a_place_in_the_session(page, make_user, policy_version):
    """Walked as a moderator: item #3 approved, Back brought it again, "reviewed", with "SLA 23h 24m left" ticking
    and "Session 2nd in this session", as if it still waited for a decision (it was the first of the session)."""
    from moderation.review.services import review_queue_default
    from tests.browser.test_review_browser import _task

    review_queue_default()
    deadline = timezone.now() + timedelta(hours=23)
    first = _task(policy_version, priority=2, deadline=deadline, decision__video__title="FIRST")
    _task(policy_version, priority=1, deadline=deadline, decision__video__title="SECOND")
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_load_state("networkidle")
    facts = page.locator("dl.facts")
    assert "1st in this session" in facts.inner_text() and " left" in facts.inner_text()  # undecided: it ticks
    page.keyboard.press("a")
    page.wait_for_function("() => window.reviewState && window.reviewState().pending === 0")
    assert "2nd in this session" in page.locator("dl.facts").inner_text()  # the next item is the second

    page.go_back()
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1200)  # the header's clock has ticked at least once
    facts = page.locator("dl.facts").inner_text()
    page.screenshot(path=str(shots_dir() / "walk17-decided-item-header.png"))
    assert page.locator(".review-head .badge").inner_text() == "reviewed"
    assert "met: decided" in facts, facts
    assert " left" not in facts and "in this session" not in facts, facts


@pytest.mark.django_db(transaction=True)
def test_a_new_integration_token_is_copied_with_one_click_as_the_users_own_token_is(page, make_user):
    """Walked as the admin: "Its token, shown only now … copy it before you leave this page", with no Copy button
    (the user's own API token page has one): selecting 43 characters by hand in a line that wraps."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, make_user("admin").username, screen=True)
    page.goto(reverse("moderation:integration_list"))
    page.fill("input[name=name]", "shortvid-platform")
    with page.expect_navigation():
        page.get_by_role("button", name="Create integration (shows its token once)").click()
    token = page.locator("#integration-token").inner_text()
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("() => document.querySelector('[data-copy]').textContent !== 'Copy'")
    copied = page.locator("[data-copy]").inner_text()
    assert copied in ("Copied", "Selected: press Ctrl+C")
    if copied == "Copied":
        assert page.evaluate("() => navigator.clipboard.readText()") == token
    page.screenshot(path=str(shots_dir() / "walk17-integration-token-copy.png"))


@pytest.mark.django_db(transaction=True)
def test_action_columns_have_a_header_a_screen_reader_can_read(page, make_user, policy_version):
    """Walked with axe on every screen (all impacts, not only moderate and worse): the column of "Claim next",
    "Correct", "Open", "Save" and the ranker's "Make v1 active again" had an empty header on the home page, the queue
    list, the CoT corrections, the adjudications, the tag vocabulary, the tag ranker and a webhook endpoint's delivery
    log ("Redeliver"): a screen reader reads
    those cells as belonging to no column (axe's empty-table-header)."""
    from moderation.integrations.services import integration_create
    from moderation.integrations.webhooks import webhook_endpoint_create
    from moderation.review.services import review_queue_default
    from moderation.tagging.services import tags_import
    from tests.browser.test_review_browser import _task

    review_queue_default()
    _task(policy_version)
    tags_import(lines=["手机\tphone"])
    integration, _ = integration_create(name="clips-platform")
    endpoint, _ = webhook_endpoint_create(
        integration=integration, url="http://127.0.0.1:9/hook", event_types=["decision.created"]
    )
    screens = {
        "home": "/",
        "queue list": reverse("moderation:queue"),
        "corrections": reverse("annotation:correction_list"),
        "adjudications": reverse("annotation:adjudication_list"),
        "vocabulary": reverse("moderation:tag_vocabulary"),
        "tag ranker": reverse("moderation:tag_ranker"),
        "webhook endpoint": reverse("moderation:webhook_endpoint", args=[endpoint.pk]),
    }
    sign_in(page, make_user("admin").username, screen=True)
    found = {}
    for name, url in screens.items():
        page.goto(url)
        page.add_script_tag(url=AXE_URL)
        nodes = page.evaluate(
            """async () => (await axe.run(document, { runOnly: ["empty-table-header"] })).violations
                 .flatMap((v) => v.nodes.map((n) => n.target.join(" ")))"""
        )
        if nodes:
            found[name] = nodes
    assert found == {}
