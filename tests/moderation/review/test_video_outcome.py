"""The video page's Outcome panel: the model's latest decision and the review state (issue: a moderator who
opened a video from the video list could not see what was decided)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.review.services import review_claim_next, review_submit
from tests.factories import DecisionFactory, ReviewTaskFactory, TagTaskFactory


def _panel(client: Client, video_id: int) -> str:
    page = client.get(reverse("moderation:video_detail", args=[video_id])).content.decode()
    start = page.index('id="video-outcome"')
    return page[start : page.index("</section>", start)]


@pytest.mark.django_db
def test_the_video_page_shows_the_model_decision_and_the_review_state(make_user) -> None:  # type: ignore[no-untyped-def]
    decision = DecisionFactory(label="引导私下交易", is_violation=True)
    task = ReviewTaskFactory(decision=decision)
    names = decision.policy_version.label_names()
    reviewer, other = make_user("moderator", username="rev-ana"), make_user("moderator", username="rev-bo")
    mine, theirs = Client(), Client()
    mine.force_login(reviewer)
    theirs.force_login(other)

    waiting = _panel(theirs, decision.video_id)
    assert names["引导私下交易"] in waiting and "violation" in waiting and str(decision.model_version) in waiting
    assert f"Waiting in queue “{task.queue.name}”" in waiting
    assert reverse("moderation:review_task", args=[task.pk]) not in waiting

    assert review_claim_next(user=reviewer) == task
    claimed = _panel(mine, decision.video_id)
    assert "Claimed by you" in claimed and reverse("moderation:review_task", args=[task.pk]) in claimed
    # Another moderator learns that it is claimed, not by whom, and gets no link they could not open.
    seen_by_other = _panel(theirs, decision.video_id)
    assert "Claimed by another reviewer" in seen_by_other and "rev-ana" not in seen_by_other
    assert reverse("moderation:review_task", args=[task.pk]) not in seen_by_other

    review_submit(task=task, user=reviewer, verdict="override", label="正向")
    done = _panel(theirs, decision.video_id)
    assert "Reviewed: Override" in done and "by rev-ana" in done
    assert names["正向"] in done.split("Final label", 1)[1]
    assert reverse("moderation:review_task", args=[task.pk]) not in done
    # An adjudication outranks the review (the one precedence rule of moderation.labels.selectors).
    from moderation.labels.models import ItemLabel

    ItemLabel.objects.create(
        video_id=decision.video_id,
        label="虚假承诺福利",
        source=ItemLabel.Source.ADJUDICATION,
        policy_version=decision.policy_version,
    )
    settled = _panel(theirs, decision.video_id).split("Final label", 1)[1]
    assert names["虚假承诺福利"] in settled and "Adjudicated" in settled and names["正向"] not in settled


@pytest.mark.django_db
def test_a_video_never_decided_says_so(make_user) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import VideoFactory

    uploader = make_user("moderator")  # not routed yet: open to its uploader
    video = VideoFactory(created_by=uploader)
    client = Client()
    client.force_login(uploader)
    panel = _panel(client, video.pk)
    assert "No model decision yet." in panel and "Not sent to review." in panel


@pytest.mark.django_db
def test_a_ready_video_says_no_worker_takes_its_model_run(make_user) -> None:  # type: ignore[no-untyped-def]
    """Compose on a host where no infer worker runs (scaled to 0, its GPU node down): the video was ready and said
    only "No model decision yet", as if the model were working on it. It says no worker takes model runs, until one
    beats."""
    from tests.factories import VideoFactory
    from workbench.health import HEARTBEAT_PREFIX, _redis, worker_heartbeat

    redis = _redis()
    for key in redis.scan_iter(match=HEARTBEAT_PREFIX + "*"):
        redis.delete(key)
    uploader = make_user("moderator")
    ready, processing = (
        VideoFactory(created_by=uploader, status="ready"),
        VideoFactory(created_by=uploader, status="processing"),
    )
    client = Client()
    client.force_login(uploader)
    try:
        worker_heartbeat(hostname="media@a", queues=["media", "default"])
        assert "No worker is taking model runs (queue infer)" in _panel(client, ready.pk)
        assert "data-no-infer-worker" not in _panel(client, processing.pk)  # still in the media stages
        worker_heartbeat(hostname="infer@gpu", queues=["infer"])
        panel = _panel(client, ready.pk)
        assert "No model decision yet." in panel and "data-no-infer-worker" not in panel
    finally:
        for key in redis.scan_iter(match=HEARTBEAT_PREFIX + "*"):
            redis.delete(key)


@pytest.mark.django_db
def test_a_pending_content_tags_item_does_not_hide_the_review(make_user) -> None:  # type: ignore[no-untyped-def]
    """The video page said "Waiting in queue “Content tags”" for a video already reviewed, and showed neither the
    verdict nor the final label: the tags item is other work, not a second verdict to keep independent."""
    decision = DecisionFactory(label="正向")
    task = ReviewTaskFactory(decision=decision)
    TagTaskFactory(decision=decision)
    reviewer, other = make_user("moderator", username="rev-cy"), make_user("moderator", username="rev-di")
    assert review_claim_next(user=reviewer) == task
    review_submit(task=task, user=reviewer, verdict="override", label="引导私下交易", severity="high")
    client = Client()
    client.force_login(other)
    panel = _panel(client, decision.video_id)
    assert "Content tags" not in panel
    assert "Reviewed: Override" in panel and "by rev-cy" in panel
    names = decision.policy_version.label_names()
    assert names["引导私下交易"] in panel.split("Final label", 1)[1]
