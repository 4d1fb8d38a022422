"""Walk hwalk20 (role walk 12) in Chromium at 1440x900: a policy editor pressing "Run again" on a draft's impact
preview by keyboard lost their place: the preview box is swapped whole, the button with it, and the focus fell to
the page's top with nothing said. The new box's run button takes the focus back."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_running_the_impact_preview_again_by_keyboard_keeps_the_focus_on_its_button(page, make_user, policy_version):
    from tests.moderation.policies.test_impact_preview import _decided, _draft_with_keyword

    _decided(policy_version, "ping me on signal for the real price")
    editor = make_user("policy_editor")
    draft = _draft_with_keyword(policy_version, editor, "signal")
    sign_in(page, editor.username, screen=True)
    page.goto(reverse("moderation:policy_version", args=[draft.pk]))
    page.get_by_role("button", name="Preview impact").click()
    page.get_by_role("button", name="Run again").wait_for()

    page.evaluate("() => { document.querySelector('.impact').dataset.old = '1'; }")
    page.get_by_role("button", name="Run again").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => { const b = document.querySelector('.impact'); return b && !b.dataset.old; }")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'impact-run'")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Run again"
    page.screenshot(path=str(shots_dir() / "impact-run-again-focus.png"))
