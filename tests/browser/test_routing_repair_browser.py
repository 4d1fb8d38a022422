"""An admin finds stranded and half-decided videos on the ops page and repairs their routing (Chromium, 1440x900);
screenshots into SHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from moderation.inference.services import decisions_create_for_video, model_version_register
from moderation.policies.models import Policy
from moderation.review.models import AwaitedQueueItem, ReviewQueue, ReviewTask
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations
from tests.factories import PolicyVersionFactory, VideoFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _ops_routing_as_admin(page: Any, make_user: Any) -> tuple[Any, Any, str]:
    """A new admin signed in at 1440x900 on the ops page: the admin, the routing panel and the panel's text."""
    admin = make_user("admin")
    sign_in(page, admin.username, screen=True)
    assert page.goto("/ops/").status == 200
    panel = page.locator("#ops-routing")
    return admin, panel, panel.inner_text()


@pytest.mark.django_db(transaction=True)
def test_an_admin_repairs_routing_from_the_ops_page(page: Any, make_user: Any, policy_version: Any) -> None:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hvis10"))
    own = model_version_register(name="seniors-model", backend="evidence_baseline")
    queue = ReviewQueue.objects.create(slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own)
    queue.allowed_groups.add(Group.objects.create(name="seniors"))
    stranded = [VideoFactory(title=f"stranded {i}", file="") for i in range(3)]
    for video in stranded:
        decisions_create_for_video(video_id=video.pk)  # awaits the seniors queue's model
    ReviewQueue.objects.filter(pk=queue.pk).update(is_active=False)  # deactivated without the admin's routing
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=True)
    half = VideoFactory(title="half decided", file="")
    decisions_create_for_video(video_id=half.pk, policy_versions=[policy_version])
    PolicyVersionFactory(policy=minors)
    _, panel, text = _ops_routing_as_admin(page, make_user)
    # All four lack the minors policy's decision (it auto-applies since they were decided).
    assert "3 stranded videos" in text and "4 decided videos lack a decision" in text, text
    assert _violations(page) == []  # the panel with its lists and button: no moderate or worse axe finding
    panel.scroll_into_view_if_needed()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "ops-routing-stranded.png"))

    with page.expect_navigation():
        panel.get_by_role("button", name="Repair routing").click()
    assert "Routed 3 stranded videos again" in page.inner_text(".messages")
    assert "queued the missing decisions of 4 half-decided videos" in page.inner_text(".messages")
    assert "No stranded video" in page.locator("#ops-routing").inner_text()
    assert not AwaitedQueueItem.objects.exists()
    page.screenshot(path=str(shots / "ops-routing-repaired.png"))


@pytest.mark.django_db(transaction=True)
def test_an_admin_deactivating_a_queue_is_told_its_waiting_decisions_were_routed_again(
    page: Any, make_user: Any, policy_version: Any
) -> None:
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hvis10"))
    own = model_version_register(name="seniors-model", backend="evidence_baseline")
    queue = ReviewQueue.objects.create(slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own)
    queue.allowed_groups.add(Group.objects.create(name="seniors"))
    for i in range(2):
        decisions_create_for_video(video_id=VideoFactory(title=f"waits {i}", file="").pk)
    make_user("admin", username="root", is_staff=True, is_superuser=True)
    sign_in(page, "root", screen=True)

    assert page.goto(f"/admin/moderation/reviewqueue/{queue.pk}/change/").status == 200
    page.uncheck("#id_is_active")
    with page.expect_navigation():
        page.click("input[name=_save]")
    messages = page.inner_text(".messagelist")
    assert "2 decisions waiting for this queue's model were routed again" in messages, messages
    assert not AwaitedQueueItem.objects.exists()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "admin-queue-deactivated-rerouted.png"))


@pytest.mark.django_db(transaction=True)
def test_an_admin_sees_failed_missing_decisions_and_how_many_clicks_are_left(
    page: Any, make_user: Any, policy_version: Any, settings: Any
) -> None:
    """Videos decided before a policy was made auto-applied: the panel says how many clicks the batch size leaves,
    lists a video whose missing decision failed three times with its error, and offers its Retry."""
    from django.utils import timezone

    from moderation.models import MissingDecisionRepair

    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hvis11"))
    settings.ROUTING_REPAIR_BATCH = 2
    videos = [VideoFactory(title=f"decided before minors {i}", file="") for i in range(4)]
    for video in videos:
        decisions_create_for_video(video_id=video.pk, policy_versions=[policy_version])
    PolicyVersionFactory(policy=Policy.objects.create(slug="minors", name="Minors", auto_apply=True))
    now = timezone.now()
    MissingDecisionRepair.objects.create(
        video=videos[0],
        queued_at=now,
        attempts=3,
        failed_at=now,
        error="RuntimeError: CUDA out of memory while loading the minors model",
    )
    _, panel, text = _ops_routing_as_admin(page, make_user)
    assert "3 not queued yet, 0 queued on the infer queue" in text and "1 given up after 3 failed tries" in text, text
    assert "CUDA out of memory" in text and "2 clicks" in text, text
    assert _violations(page) == []
    panel.scroll_into_view_if_needed()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "ops-routing-failed-and-clicks.png"))

    with page.expect_navigation():
        panel.get_by_role("button", name="Repair routing").click()
    message = page.inner_text(".messages")
    assert "1 half-decided video still to repair" in message and "click Repair routing again" in message, message
    page.screenshot(path=str(shots / "ops-routing-one-more-click.png"))

    with page.expect_navigation():
        page.locator("#ops-routing").get_by_role("button", name="Retry 1 given-up video").click()
    assert "once more on the infer queue" in page.inner_text(".messages")
    page.screenshot(path=str(shots / "ops-routing-retried.png"))


@pytest.mark.django_db(transaction=True)
def test_an_admin_retries_one_given_up_video_dismisses_another_and_finds_it_under_dismissed(
    page: Any, make_user: Any, policy_version: Any
) -> None:
    """Each failed try is a row with its video, policy, error, tries and time; Retry and Dismiss act on that one
    video in the panel (htmx, no page load) and say what they did; the dismissed filter lists the dismissal."""
    from django.utils import timezone

    from moderation.models import MissingDecisionRepair

    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hfix12"))
    videos = [VideoFactory(title=f"decided before minors {i}", file="") for i in range(3)]
    for video in videos:
        decisions_create_for_video(video_id=video.pk, policy_versions=[policy_version])
    PolicyVersionFactory(policy=Policy.objects.create(slug="minors", name="Minors", auto_apply=True))
    now = timezone.now()
    for video, error in zip(
        videos,
        ("RuntimeError: CUDA out of memory while loading the minors model", "ValueError: no frames", "timeout"),
        strict=True,
    ):
        MissingDecisionRepair.objects.create(video=video, queued_at=now, attempts=3, failed_at=now, error=error)
    # Older code's routing: a decision no queue holds (its awaited row went with a queue deleted in bulk).
    orphan = VideoFactory(title="in no queue", file="")
    decisions_create_for_video(video_id=orphan.pk, policy_versions=[policy_version])
    ReviewTask.objects.filter(decision__video=orphan).delete()
    admin, panel, text = _ops_routing_as_admin(page, make_user)
    assert "1 video with routing older code left inconsistent" in text, text
    assert "3 given up after 3 failed tries" in text and "CUDA out of memory" in text, text
    assert _violations(page) == []
    shots.mkdir(parents=True, exist_ok=True)
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-routing-failed-rows.png"))

    from playwright.sync_api import expect

    url = page.url
    panel.get_by_role("button", name=f"Retry video #{videos[0].pk}").click()
    expect(page.locator("#ops-routing-outcome")).to_contain_text(
        f"Queued the missing decisions of video #{videos[0].pk} once more"
    )
    assert page.url == url  # the panel was swapped, the page not reloaded
    assert "2 given up after 3 failed tries" in page.locator("#ops-routing").inner_text()

    page.locator("#ops-routing").get_by_role("button", name=f"Dismiss video #{videos[1].pk}").click()
    expect(page.locator("#ops-routing-outcome")).to_contain_text(f"Dismissed video #{videos[1].pk}")
    text = page.locator("#ops-routing").inner_text()
    assert (
        "1 more dismissed by an operator" in text
        and f"#{videos[1].pk}" not in page.locator("#ops-routing-failed").inner_text()
    )
    assert _violations(page) == []
    page.locator("#ops-routing").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-routing-dismissed-one.png"))

    page.locator("#ops-routing-failed-filter").get_by_role("link", name="dismissed (1)").click()
    expect(page.locator("#ops-routing-failed caption")).to_contain_text("Dismissed by an operator")
    table = page.locator("#ops-routing-failed")
    assert f"#{videos[1].pk}" in table.inner_text() and f"by {admin.username}" in table.inner_text()
    page.locator("#ops-routing").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "ops-routing-dismissed-filter.png"))

    with page.expect_navigation():
        page.locator("#ops-routing").get_by_role("button", name="Repair routing").click()
    assert "Mended the routing of 1 inconsistently routed video (left by older code)" in page.inner_text(".messages")
    assert ReviewTask.objects.filter(decision__video=orphan).exists()


@pytest.mark.django_db(transaction=True)
def test_past_a_thousand_inconsistent_videos_the_ops_page_says_1000_plus(
    page: Any, make_user: Any, policy_version: Any
) -> None:
    """The routing panel counts each kind as far as 1,000 (one read a load), then says "1,000+", and the clicks the
    repair takes as at least that many."""
    from moderation.review.services import review_queue_default
    from tests.moderation.review.seeding import seed_pending_tasks

    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hops12"))
    seed_pending_tasks(n=1001, queue=review_queue_default(), policy_version=policy_version, title="legacy")
    ReviewTask.objects.all().delete()  # older code's decisions no queue holds nor awaits
    _, panel, text = _ops_routing_as_admin(page, make_user)
    assert "1,000+ videos with routing older code left inconsistent" in text, text
    assert "1,000+ with a decision no queue holds nor awaits" in text and "0 with a pending item" in text, text
    assert "2+ clicks for the 1,000+ inconsistently routed" in text, text
    panel.scroll_into_view_if_needed()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "ops-routing-1000-plus.png"))
