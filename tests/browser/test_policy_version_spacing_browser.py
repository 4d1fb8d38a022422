"""A policy version's page in Chromium at 1440x900: the "Edit as new draft" / "Publish and make active…" row stands
apart from the Impact preview panel below it (it touched the panel's border). (SCREENSHOT_DIR keeps the screenshot.)"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from moderation.policies.services import policy_version_create_draft
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def test_the_publish_row_stands_apart_from_the_impact_preview(page, make_user, policy_version, tmp_path):
    editor = make_user("policy_editor", username="spacing-editor")
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=copy.deepcopy(policy_version.taxonomy), by=editor, notes="Wording"
    )
    sign_in(page, editor.username, screen=True)
    page.goto(f"/policies/versions/{draft.pk}/")
    row = page.locator("div.actions", has=page.get_by_role("button", name="Publish and make active…"))
    impact = page.locator("section.panel", has=page.get_by_role("heading", name="Impact preview"))
    row_box, impact_box = row.bounding_box(), impact.bounding_box()
    assert row_box and impact_box
    gap = impact_box["y"] - (row_box["y"] + row_box["height"])
    page.screenshot(path=str(Path(os.environ.get("SCREENSHOT_DIR", tmp_path)) / "policy-version-actions.png"))
    assert gap >= 12, f"the actions row is {gap:.1f}px from the Impact preview panel"
