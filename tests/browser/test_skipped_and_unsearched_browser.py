"""An admin reads, at 1440x900, a stage-1 training skipped because another was running (the cascade dashboard) and a
video whose reproduction candidates were given up on while media storage was away (the ops page); screenshots into
SHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from moderation.inference.cascade_models import CascadeTraining
from moderation.inference.services import CASCADE_TRAINING_BUSY
from moderation.reproduction.models import ReproRetrievalFailure
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations
from tests.factories import VideoFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_skipped_training_and_unsearched_video_read_plainly(page: Any, make_user: Any) -> None:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hops14"))
    shots.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    CascadeTraining.objects.create(
        name="stage1", trigger=CascadeTraining.Trigger.BEAT, status=CascadeTraining.Status.SKIPPED,
        error=CASCADE_TRAINING_BUSY, started_at=now, finished_at=now,
    )  # fmt: skip
    video = VideoFactory(title="never compared")
    ReproRetrievalFailure.objects.create(
        video=video, attempts=17, failed_at=now,
        error="Media storage stayed unreachable: The object store is unreachable (EndpointConnectionError) "
        "while handling models/repro/student.joblib.",
    )  # fmt: skip
    admin = make_user("admin")
    sign_in(page, admin.username, screen=True)

    page.goto("/cascade/")
    training = page.locator("#cascade-training")
    assert "Skipped: another training was running" in training.inner_text()
    assert "failed" not in training.inner_text()
    training.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "cascade-training-skipped.png"))
    assert _violations(page) == []

    page.goto("/ops/")
    listed = page.locator("#ops-repro-failed")
    assert "1 video without reproduction candidates" in listed.inner_text()
    assert f"#{video.pk}" in listed.inner_text()
    listed.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-repro-not-computed.png"))
    assert _violations(page) == []
