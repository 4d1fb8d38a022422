"""Conflicting edits as the second person sees them in Chromium at 1440x900: a tagger whose colleague saved the
video's tags a moment earlier, and an admin pressing "Start the training job" a second time. Each gets a message
that says what happened and what to do, on the page they were working on. ``SHOTS_DIR`` set: screenshots there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from moderation.review.services import review_claim_next
from moderation.tagging.models import Tag, VideoTag
from moderation.tagging.services import tags_import, tags_review_submit
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.factories import DecidedVideoFactory, TagTaskFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


@pytest.mark.django_db(transaction=True)
def test_a_tagger_whose_colleague_saved_first_is_told_and_shown_their_tags(page, make_user, policy_version):
    tags_import(lines=["美食", "旅游"])
    food = Tag.objects.get(name="美食")
    video = DecidedVideoFactory(file="", title="Street food tour")
    item = TagTaskFactory(decision=video.decisions.get())
    bob, alice = make_user("moderator"), make_user("moderator")
    assert review_claim_next(user=bob, queue=item.queue).pk == item.pk
    sign_in(page, bob.username, screen=True)
    page.goto(f"/tags/task/{item.pk}/")

    # Alice, on her review screen of the same video, saves "美食" while Bob's screen is open.
    tags_review_submit(video_id=video.pk, user=alice, selected=[food.pk], shown=[], seen=[])
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()

    assert f"/tags/task/{item.pk}/" in page.url  # still Bob's item, drawn again
    said = page.locator(".messages .msg-error").inner_text()
    assert "Someone else saved this video's tags a moment ago" in said and "美食" in said
    assert page.locator(f"input[name=tag][value='{food.pk}']").is_checked()  # their tag, as it is now
    _shot(page, "tags-saved-by-someone-else")
    assert list(VideoTag.objects.filter(video=video).values_list("tag__name", flat=True)) == ["美食"]
