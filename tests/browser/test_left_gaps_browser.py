"""At 1440x900 in Chromium: an admin retries and dismisses videos without reproduction candidates from the ops page
(htmx swaps the list in place), a tagger reads on /tags/ why the item they held is gone, and the audit log shows an
old payload without its bidi controls; screenshots into SHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from moderation.reproduction.models import ReproRetrievalFailure
from moderation.review.models import ReviewQueue
from moderation.review.services import audit_event_record, review_claim_next
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations
from tests.factories import ReviewTaskFactory, TagTaskFactory, VideoFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _shots() -> Path:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hleft15"))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.django_db(transaction=True)
def test_an_admin_retries_and_dismisses_videos_without_reproduction_candidates(page: Any, make_user: Any) -> None:
    shots = _shots()
    error = "Media storage stayed unreachable: The object store is unreachable (EndpointConnectionError)"
    retried, dismissed = VideoFactory(title="never compared"), VideoFactory(title="accepted as is")
    for video in (retried, dismissed):
        ReproRetrievalFailure.objects.create(video=video, attempts=6, failed_at=timezone.now(), error=error)
    admin = make_user("admin")
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, admin.username)

    page.goto("/ops/")
    listed = page.locator("#ops-repro-failed")
    assert "2 videos without reproduction candidates" in listed.inner_text()
    listed.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-repro-failed-actions.png"))
    assert _violations(page) == []

    page.get_by_role("button", name=f"Retry the search of video #{retried.pk}").click()
    said = page.locator("#ops-repro-outcome")
    said.wait_for()
    assert f"Queued the search for video #{retried.pk}" in said.inner_text()
    row = page.locator(f"#ops-repro-failed-{retried.pk}")
    assert "retry queued at" in row.inner_text() and row.get_by_role("button").count() == 0
    page.locator("#ops-repro-failed").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-repro-retry-queued.png"))

    page.get_by_role("button", name=f"Dismiss video #{dismissed.pk}").click()
    page.get_by_text(f"Dismissed video #{dismissed.pk}").wait_for()
    assert page.locator(f"#ops-repro-failed-{dismissed.pk}").count() == 0
    assert "1 more without reproduction candidates dismissed" in page.locator("#ops-repro-failed").inner_text()
    page.screenshot(path=str(shots / "ops-repro-dismissed.png"))
    assert _violations(page) == []
    failure = ReproRetrievalFailure.objects.get(video=dismissed)
    assert failure.dismissed_by == admin


@pytest.mark.django_db(transaction=True)
def test_a_tagger_reads_why_the_item_they_held_is_gone_and_an_old_payload_reads_plainly(
    page: Any, make_user: Any, policy_version: Any
) -> None:
    shots = _shots()
    tagger = make_user("moderator")
    task = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="street food")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    experts = ReviewQueue.objects.create(slug="experts", name="Experts")
    experts.allowed_groups.add(Group.objects.create(name="experts"))
    ReviewTaskFactory(decision=task.decision, queue=experts)
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, tagger.username)
    page.goto("/tags/")
    note = page.locator("[data-held-hidden]")
    assert "no longer open to you" in note.inner_text()
    page.screenshot(path=str(shots / "tags-queue-held-hidden.png"))
    assert _violations(page) == []

    auditor = make_user(None, is_staff=True, is_superuser=True)
    event = audit_event_record(
        actor=tagger, action="escalate", obj=task, payload={"reason": "refund \u202e0011 2233\u202c please"}
    )
    page.context.clear_cookies()
    sign_in(page, auditor.username)
    page.goto(f"/admin/moderation/auditevent/{event.pk}/change/")
    shown = page.locator(".field-payload_shown").inner_text()
    assert "refund 0011 2233 please" in shown and "\u202e" not in shown
    page.screenshot(path=str(shots / "audit-payload-without-bidi.png"))
