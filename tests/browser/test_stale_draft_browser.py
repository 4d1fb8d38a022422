"""A policy editor in Chromium at 1440x900 publishes a draft started from a version that is no longer active: the
page warns and lists what the active version changed, the confirm step will not go without its box ticked, and
the published version says what it replaced. (SCREENSHOT_DIR keeps the screenshots.)"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from moderation.policies.models import PolicyVersion
from moderation.policies.services import policy_version_create_draft, policy_version_publish
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _screen_problems

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _tag(taxonomy, key: str):  # type: ignore[no-untyped-def]
    return next(t for c in taxonomy for t in c["tags"] if t["key"] == key)


def test_a_stale_draft_warns_and_publishes_only_once_confirmed(page, make_user, policy_version, tmp_path):
    editor = make_user("policy_editor", username="rubric-editor")
    v1 = policy_version
    newer = copy.deepcopy(v1.taxonomy)
    _tag(newer, "引导私下交易")["keywords"] += ["signal", "line app"]
    _tag(newer, "引导私下交易")["criteria"] = ["Asks viewers to move a purchase to a messaging app."]
    _tag(newer, "未添加AI标识")["name"] = "AI-generated content without a label"
    v2 = policy_version_create_draft(policy=v1.policy, taxonomy=newer, by=editor, notes="Messaging apps")
    older = copy.deepcopy(v1.taxonomy)
    _tag(older, "违法犯罪")["keywords"].append("loan shark")
    v3 = policy_version_create_draft(policy=v1.policy, taxonomy=older, by=editor, notes="Loan sharks are crime")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))

    sign_in(page, editor.username, screen=True)
    page.goto(f"/policies/versions/{v3.pk}/")
    assert page.locator("#stale-draft").count() == 0  # v1 is still active: an up-to-date draft, one click

    # Another editor publishes v2 while this page is open; its publish button opens the confirm step, which now
    # warns that v2 would be replaced and asks for the box.
    policy_version_publish(version=v2, by=make_user("policy_editor"))
    with page.expect_navigation():
        page.get_by_role("button", name="Publish and make active…").click()
    assert page.locator("#stale-draft h2").inner_text().endswith(f"publishing replaces v{v2.number}'s changes")
    assert page.locator("#publish-confirm").get_by_role("checkbox").count() == 1
    assert PolicyVersion.objects.get(pk=v3.pk).status == "draft"
    page.screenshot(path=str(shots / "stale-draft-refused.png"))

    # Both steps pass axe (no moderate or worse violation) and fit the window.
    url = f"/policies/versions/{v3.pk}/"
    assert _screen_problems(page, {"stale draft": url, "confirm step": f"{url}?confirm=publish"}) == {}
    page.goto(url)
    warning = page.locator("#stale-draft")
    assert warning.locator("h2").inner_text() == (
        f"Started from v{v1.number}; v{v2.number} is active now: publishing replaces v{v2.number}'s changes"
    )
    rows = warning.locator("table.diff tbody tr")
    assert rows.count() == 3  # keywords added (two in one row), criteria added, a tag renamed
    assert page.get_by_role("button", name="Publish and make active…").count() == 0
    page.screenshot(path=str(shots / "stale-draft-warning.png"))

    page.get_by_role("button", name=f"Publish, replacing v{v2.number}…").click()
    confirm = page.locator("#publish-confirm")
    confirm.wait_for()
    publish = confirm.get_by_role("button", name=f"Publish v{v3.number}, replacing v{v2.number}")
    publish.click()  # the box is not ticked: the browser keeps the form
    assert page.locator("#publish-confirm").is_visible()
    assert PolicyVersion.objects.get(pk=v3.pk).status == "draft"
    confirm.get_by_label("Why").fill("Crime keywords ship today; the messaging-app rule is re-done on top of them.")
    confirm.get_by_role("checkbox").check()
    confirm.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "stale-draft-confirm.png"))

    with page.expect_navigation():
        publish.click()
    assert f"v{v3.number} is published and active" in page.content()
    page.goto(f"/policies/versions/{v3.pk}/")
    note = page.locator(".publish-note").inner_text()
    assert note.startswith(f"Published over v{v2.number}, which it was not started from")
    assert note.endswith("Reason: Crime keywords ship today; the messaging-app rule is re-done on top of them.")
    page.screenshot(path=str(shots / "stale-draft-published.png"))
