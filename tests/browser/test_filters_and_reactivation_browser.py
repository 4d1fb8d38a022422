"""Seen in Chromium at 1440x900 after their fixes: an unknown adjudication status is said above every
adjudication under "All"; re-activating a version after another became active brings the confirm step back with
the reason. (SCREENSHOT_DIR keeps the screenshots.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR", tmp_path))


def test_an_unknown_adjudication_status_is_said_above_every_adjudication(page, make_user, policy_version, tmp_path):
    from annotation.models import Adjudication
    from tests.factories import DecisionFactory

    for status in ("open", "decided"):
        decision = DecisionFactory(policy_version=policy_version)
        Adjudication.objects.create(
            video=decision.video, decision=decision, kind="reported_pass", reason="r", status=status
        )
    moderator = make_user("moderator", username="adjudicator")
    sign_in(page, moderator.username, screen=True)

    response = page.goto("/annotation/adjudications/?status=pending")

    assert response is not None and response.status == 400
    said = page.locator("#status-problem").inner_text()
    assert said.startswith("There is no adjudication status “pending”: showing every adjudication.")
    assert page.locator("nav.filters strong").inner_text() == "All"
    assert page.locator("tbody tr").count() == 2
    page.screenshot(path=str(_shots(tmp_path) / "adjudications-unknown-status.png"))


def test_making_a_version_active_again_after_another_was_published_asks_again(
    page, make_user, policy_version, tmp_path
):
    import copy

    from moderation.policies.models import PolicyVersion
    from moderation.policies.services import policy_version_create_draft, policy_version_publish

    editor = make_user("policy_editor", username="rollback-editor")
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    taxonomy[0]["tags"][0]["keywords"].append("loan shark")
    v2 = policy_version_publish(
        version=policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor), by=editor
    )
    sign_in(page, editor.username, screen=True)
    page.goto(f"/policies/versions/{policy_version.pk}/?confirm=activate")
    step = page.locator("#publish-confirm")
    assert f"replacing v{v2.number}?" in step.locator("h2").inner_text()
    taxonomy[0]["tags"][0]["keywords"].append("quick cash")
    v3 = policy_version_publish(  # another editor, meanwhile
        version=policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor), by=editor
    )

    with page.expect_navigation():
        step.get_by_role("button").first.click()

    refused = page.locator("#publish-refused")
    assert f"you confirmed replacing v{v2.number}, but v{v3.number} is active now" in refused.inner_text()
    assert f"replacing v{v3.number}?" in page.locator("#publish-confirm h2").inner_text()
    assert PolicyVersion.objects.get(policy=policy_version.policy, is_active=True) == v3
    page.screenshot(path=str(_shots(tmp_path) / "reactivate-refused.png"))
