"""An uploader whose video went to a restricted review queue, as they see it (Chromium, 1440x900):
their video list keeps a row by number saying where it went, and the video's address says the same; screenshots
into SHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from moderation.inference.services import decisions_create_for_video, model_version_register
from moderation.policies.models import Policy
from moderation.review.models import ReviewQueue
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.factories import PolicyVersionFactory, VideoFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_the_uploader_sees_where_their_restricted_upload_went(page: Any, make_user: Any, policy_version: Any) -> None:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hvis9"))
    serving = model_version_register(name="minors-model", backend="evidence_baseline")
    policy = Policy.objects.create(slug="minors", name="Minors", auto_apply=True, serving_model=serving)
    PolicyVersionFactory(policy=policy)
    queue = ReviewQueue.objects.create(slug="minors", name="Minors", policy=policy)
    queue.allowed_groups.add(Group.objects.create(name="minors-experts"))
    uploader = make_user("moderator")
    VideoFactory(created_by=uploader, uploader=uploader.username, title="Open clip", file="")
    video = VideoFactory(created_by=uploader, uploader=uploader.username, title="Secret school clip", file="")
    decisions_create_for_video(video_id=video.pk)
    sign_in(page, uploader.username, screen=True)

    assert page.goto("/videos/").status == 200
    row = page.locator(f"#video-{video.pk}")
    assert f"Your upload #{video.pk}" in row.inner_text() and "no longer open to you" in row.inner_text()
    assert "Secret school clip" not in page.content()
    assert page.locator("#video-rows a").count() == 1  # the undecided upload still links; the restricted one not
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "uploads-restricted-row.png"))

    assert page.goto(f"/videos/{video.pk}/").status == 404
    assert f"Your upload #{video.pk} was sent to a restricted review queue" in page.inner_text("main")
    page.screenshot(path=str(shots / "uploads-restricted-404.png"))
