"""Every tag-ranker training is recorded (the page's button, the command, the beat task): who or what started it,
when, on how many events and videos, the held-out score, the ranker version it made, or why it made none; a
redelivered task records nothing twice; suggestions say which ranker version ranked them."""

from __future__ import annotations

import random
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from moderation.review.models import AuditEvent
from moderation.tagging import ranking, selectors, services
from moderation.tagging.models import TagRanker, TagRankerTraining, TagSet, TagSuggestion, VideoTagState
from moderation.tagging.tasks import train_tag_ranker
from tests.factories import TagEventFactory, TagFactory, TagSuggestionFactory, UserFactory, VideoFactory
from workbench.queues import TASK_ROUTES, TaskQueue

pytestmark = pytest.mark.django_db


def _events(videos: int, *, per_video: int = 6, seed: int = 0) -> None:
    """Reviewers' answers on ``videos`` videos: the tags they kept had a high embedding cosine and no text hit (with
    some noise), the ones they rejected the reverse: a ranker can learn it, and rank held-out videos by it."""
    rng = random.Random(seed)
    reviewer = UserFactory(role="moderator")
    tags = [TagFactory() for _ in range(per_video)]
    for _ in range(videos):
        video = VideoFactory()
        for i, tag in enumerate(tags):
            kept = i < 2
            features = {k: 0.0 for k in ranking.APP_FEATURES}
            features["embedding"] = (0.7 if kept else 0.4) + rng.uniform(-0.2, 0.2)
            features["text_any"] = 0.0 if kept else float(rng.random() < 0.7)
            TagEventFactory(
                video=video, tag=tag, reviewer=reviewer, action="accept" if kept else "reject", features=features
            )


def _pending_suggestion() -> TagSuggestion:
    """A suggestion of a video nobody has tagged yet (what the next reviewer sees)."""
    video = VideoFactory()
    VideoTagState.objects.create(video=video)
    features = {k: 0.0 for k in ranking.APP_FEATURES}
    features["embedding"] = 0.8
    return TagSuggestionFactory(video=video, features=features)


def test_the_command_records_a_run_with_its_counts_held_out_score_and_the_ranker_version_it_made():
    _events(30)
    suggestion = _pending_suggestion()
    out = StringIO()

    call_command("train_tag_ranker", "--min-events", "20", stdout=out)

    run = TagRankerTraining.objects.get()
    assert run.trigger == "command" and run.status == "done" and run.requested_by is None
    assert run.started_at is not None and run.finished_at is not None and run.finished_at >= run.started_at
    assert (run.n_events, run.n_videos, run.positives, run.min_events) == (180, 30, 60, 20)
    # Six videos held out (every fifth by id), each with two kept tags among six: the learned ranker finds them.
    assert run.heldout_videos == 6 and run.heldout_p_at_5 == pytest.approx(0.4) and run.heldout_note == ""
    assert run.heldout_weighted_p_at_5 is not None
    ranker = run.ranker
    assert ranker is not None and ranker.version == 1 and ranker.is_active and ranker.kind == "logistic"
    assert f"run #{run.pk}: succeeded: ranker v1 from 180 events on 30 videos; held-out P@5 0.400" in out.getvalue()
    # What the next reviewer sees was re-scored by it and says so.
    suggestion.refresh_from_db()
    assert suggestion.ranker_id == ranker.pk
    assert VideoTagState.objects.get(video_id=suggestion.video_id).ranker_id == ranker.pk
    panel = selectors.tag_panel_for(
        video_id=suggestion.video_id, tag_set=TagSet.objects.create(name="all", slug="all", show_threshold=0)
    )
    assert panel["ranked_by"] == "ranker v1 (learned from 180 reviewer events)"


def test_too_few_events_is_recorded_as_skipped_with_the_reason_and_changes_nothing():
    _events(30)
    first = services.tag_ranker_train(min_events=20)
    suggestion = _pending_suggestion()

    out = StringIO()
    call_command("train_tag_ranker", "--min-events", "1000", stdout=out)

    run = TagRankerTraining.objects.exclude(pk=first.pk).get()
    assert run.status == "skipped" and run.ranker is None and run.n_events == 180
    assert run.reason == "180 usable events; the learned ranker needs 1000. The active ranker is unchanged."
    assert run.heldout_p_at_5 is None and run.heldout_note == "none: nothing was trained"
    assert "skipped: 180 usable events; the learned ranker needs 1000" in out.getvalue()
    assert list(TagRanker.objects.values_list("version", "is_active")) == [(1, True)]
    suggestion.refresh_from_db()
    assert suggestion.ranker_id is None  # not re-scored: nothing changed


def test_a_small_set_trains_but_says_why_it_has_no_held_out_score():
    _events(10)
    run = services.tag_ranker_train(min_events=20)
    assert run.status == "done" and run.heldout_p_at_5 is None
    assert run.heldout_note == "none: 2 held-out videos with an accepted tag (one video in 5); a score needs 5"
    assert "held-out P@5 none: 2 held-out videos" in selectors.tag_ranker_run_summary(run=run)


def test_a_failed_run_is_recorded_with_a_message_an_admin_can_act_on():
    _events(30)
    bad = TagEventFactory(action="accept", features={"embedding": "0.9 (cosine)"})

    with pytest.raises(
        CommandError, match=f"failed: Tag event {bad.pk} holds a feature “embedding” that is not a number"
    ):
        call_command("train_tag_ranker", "--min-events", "20", stdout=StringIO())

    run = TagRankerTraining.objects.get()
    assert run.status == "failed" and run.finished_at is not None and run.ranker is None
    assert "Correct or remove that event's features, then retrain." in run.error
    assert not TagRanker.objects.exists()


def test_the_page_records_a_queued_run_and_the_task_runs_it_once_however_often_it_is_delivered(
    client_as, django_capture_on_commit_callbacks
):
    _events(30)
    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False) as sent:
        client.post(reverse("moderation:tag_ranker_train"))
        client.post(reverse("moderation:tag_ranker_train"))  # a double click: the same run, sent once
    run = TagRankerTraining.objects.get()
    assert run.status == "queued" and run.trigger == "page" and run.requested_by.username.startswith("user")
    assert run.sent_at is not None and len(sent) == 1
    assert TASK_ROUTES["moderation.tagging.tasks.train_tag_ranker"] == TaskQueue.DEFAULT

    assert train_tag_ranker.apply(args=[run.pk]).get() == "done"
    assert train_tag_ranker.apply(args=[run.pk]).get() == "done"  # redelivered: left as it is

    run.refresh_from_db()
    assert run.status == "done" and run.ranker is not None and run.ranker.version == 1
    assert TagRanker.objects.count() == 1 and TagRankerTraining.objects.count() == 1


def test_a_beat_message_delivered_twice_records_one_run():
    _events(30)

    assert train_tag_ranker.apply(task_id="beat-tick-1").get() == "done"
    assert train_tag_ranker.apply(task_id="beat-tick-1").get() == "done"  # the same message, again

    run = TagRankerTraining.objects.get()
    assert run.trigger == "beat" and run.message_id == "beat-tick-1" and run.requested_by is None
    assert TagRanker.objects.count() == 1
    _events(1, seed=3)  # reviewers answered meanwhile
    train_tag_ranker.apply(task_id="beat-tick-2")  # the next hour's tick: a run of its own, a new version
    assert TagRankerTraining.objects.count() == 2
    assert list(TagRanker.objects.order_by("version").values_list("version", "is_active")) == [(1, False), (2, True)]


def test_a_run_whose_worker_was_lost_is_recorded_failed_when_a_retrain_is_asked_again(client_as):
    admin = UserFactory(role="admin")
    lost = services.tag_ranker_training_request(trigger="page", by=admin)
    long_ago = timezone.now() - TagRankerTraining.STALLED_AFTER - timedelta(minutes=1)
    TagRankerTraining.objects.filter(pk=lost.pk).update(status="running", sent_at=long_ago, started_at=long_ago)

    again = services.tag_ranker_training_request(trigger="page", by=admin)

    lost.refresh_from_db()
    assert again.pk != lost.pk and again.status == "queued"
    assert lost.status == "failed" and "its worker was lost" in lost.error and lost.finished_at is not None


def test_an_earlier_ranker_version_can_be_made_active_again(client_as):
    _events(30, seed=1)
    services.tag_ranker_train(min_events=20)
    _events(30, seed=2)
    services.tag_ranker_train(min_events=20)
    suggestion = _pending_suggestion()
    v1 = TagRanker.objects.get(version=1)
    client = client_as("admin")

    page = client.post(reverse("moderation:tag_ranker_activate", args=[v1.pk]), follow=True).content.decode()

    assert "Ranker v1 is active again" in page
    assert list(TagRanker.objects.order_by("version").values_list("version", "is_active")) == [(1, True), (2, False)]
    suggestion.refresh_from_db()
    assert suggestion.ranker_id == v1.pk
    event = AuditEvent.objects.get(action="tag_ranker.activate")
    assert event.payload["version"] == 1 and event.payload["previous"] == 2 and event.payload["rescored"] == 1
    again = client.post(reverse("moderation:tag_ranker_activate", args=[v1.pk]), follow=True).content.decode()
    assert "Nothing changed: Ranker v1 is already the active one." in again
    assert client_as("moderator").post(reverse("moderation:tag_ranker_activate", args=[v1.pk])).status_code == 403


def test_suggestions_ranked_before_any_ranker_say_the_weighted_sum_ranked_them(client_as):
    suggestion = _pending_suggestion()
    tag_set = TagSet.objects.create(name="all", slug="all", show_threshold=0)
    panel = selectors.tag_panel_for(video_id=suggestion.video_id, tag_set=tag_set)
    assert panel["ranked_by"].startswith("the weighted sum of the sources: not enough reviewer events yet")
    queue = client_as("moderator").get(reverse("moderation:tag_queue")).content.decode()
    assert "New suggestions are ranked by the weighted sum of the sources" in queue


@pytest.mark.django_db(transaction=True)
def test_the_button_and_a_beat_tick_train_through_the_real_broker_and_worker(client_as, celery_worker):
    """The click's message goes through Redis after the commit, on the default queue, to a real worker; the beat's
    message (sent as beat sends it: the task's name, no argument) records a run of its own. The test waits on the
    recorded state, not on time."""
    import time

    from workbench.celery import app

    def settled(count: int) -> None:
        deadline = time.monotonic() + 180  # generous: a loaded 2-core machine
        while time.monotonic() < deadline and (
            TagRankerTraining.objects.filter(status__in=TagRankerTraining.OPEN).exists()
            or TagRankerTraining.objects.count() < count
        ):
            time.sleep(0.1)

    _events(30)
    client_as("admin").post(reverse("moderation:tag_ranker_train"))
    page_run = TagRankerTraining.objects.get()
    settled(1)
    _events(1, seed=3)  # reviewers answered since: the beat's tick trains
    app.send_task("moderation.tagging.tasks.train_tag_ranker", queue=TaskQueue.DEFAULT.value)
    settled(2)
    page_run.refresh_from_db()
    beat_run = TagRankerTraining.objects.exclude(pk=page_run.pk).get()
    assert page_run.status == "done" and page_run.trigger == "page", (page_run.status, page_run.error)
    assert beat_run.status == "done" and beat_run.trigger == "beat" and beat_run.message_id
    assert (beat_run.previous_id, beat_run.new_events) == (page_run.pk, 6)
    assert sorted(TagRanker.objects.values_list("version", flat=True)) == [1, 2]
    app.send_task("moderation.tagging.tasks.train_tag_ranker", queue=TaskQueue.DEFAULT.value)  # nothing new since
    settled(3)
    quiet = TagRankerTraining.objects.order_by("-pk").first()
    assert quiet is not None and quiet.status == "unchanged" and quiet.previous_id == beat_run.pk
    assert sorted(TagRanker.objects.values_list("version", flat=True)) == [1, 2]


def test_the_migration_numbers_the_rankers_trained_before_it_in_their_order():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("moderation.migrations.0046_tag_ranker_training_runs")
    older = TagRanker.objects.create(version=70, kind="weighted")
    newer = TagRanker.objects.create(version=40, kind="logistic", is_active=True)

    migration.number_rankers(apps, None)

    assert [TagRanker.objects.get(pk=r.pk).version for r in (older, newer)] == [1, 2]
