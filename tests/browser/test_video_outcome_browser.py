"""The video page's Outcome panel as a moderator sees it (Chromium, 1440x900); screenshots into SHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from moderation.review.services import review_claim_next, review_submit
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.factories import DecisionFactory, ReviewTaskFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_the_outcome_panel_shows_the_claim_then_the_verdict(page: Any, make_user: Any, policy_version: Any) -> None:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hvid"))
    decision = DecisionFactory(
        policy_version=policy_version, label="引导私下交易", is_violation=True, severity="medium"
    )
    decision.video.title = "Message me to buy it cheaper"
    decision.video.save(update_fields=["title"])
    task = ReviewTaskFactory(decision=decision)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator) == task
    sign_in(page, moderator.username, screen=True)

    assert page.goto(f"/videos/{decision.video_id}/").status == 200
    panel = page.locator("#video-outcome")
    assert "Claimed by you" in panel.inner_text()
    assert page.locator("#video-outcome-open").get_attribute("href") == f"/review/{task.pk}/"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "video-outcome-claimed.png"))

    review_submit(task=task, user=moderator, verdict="approve")
    page.reload()
    text = page.locator("#video-outcome").inner_text()
    assert f"by {moderator.username}" in text and "Final label" in text
    assert page.locator("#video-outcome-open").count() == 0
    page.screenshot(path=str(shots / "video-outcome-reviewed.png"))
