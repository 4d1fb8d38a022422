"""One way to confirm an irreversible action (walk hui22): a step in the page saying what happens, a "Yes, ..." danger
button and Cancel, as the integration switch and the policy publish ask. The tags panel's reject-all and the tag set
switch asked with the browser's confirm() box instead (the browser tests in test_tag_browser.py click through them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import TagTaskFactory

# A call with an argument: window.confirm("..."), confirm(question); a comment naming "confirm()" is no call.
_NATIVE_DIALOG = re.compile(r"(?<![\w.$])(?:window\.)?(?:confirm|prompt|alert)\(\s*[^)\s]")


def test_no_script_of_ours_asks_with_the_browsers_dialog_boxes() -> None:
    static = Path(settings.BASE_DIR) / "static"
    ours = [p for p in static.rglob("*.js") if "vendor" not in p.parts]
    assert ours
    calls = [f"{p.relative_to(static)}: {m.group(0)}" for p in ours for m in _NATIVE_DIALOG.finditer(p.read_text())]
    assert calls == []


def _step(page: str, marker: str) -> str:
    start = page.index(marker)
    return page[page.rindex("<div", 0, start) : page.index("</div>", start)]


@pytest.mark.django_db
def test_the_tag_screen_carries_its_confirm_steps_hidden_in_the_apps_one_pattern(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    task = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=user, queue=task.queue) == task
    page = client.get(f"/tags/task/{task.pk}/").content.decode()

    for marker, yes in (
        ("data-confirm-reject-all", "Yes, reject them all"),
        ("data-confirm-switch", "Yes, switch and drop them"),
    ):
        step = _step(page, marker)
        assert 'class="confirm-step"' in step and "hidden" in step and 'role="alert"' in step, step
        assert re.search(rf'<button type="submit"[^>]* class="danger"[^>]*data-confirm-yes>{yes}</button>', step), step
        assert '<button type="button" data-confirm-cancel>Cancel</button>' in step, step
        warning = re.search(r'<p class="warning" id="([^"]+)">', step)
        assert warning and f'aria-describedby="{warning.group(1)}"' in step, step  # "Yes" is read with what it does
