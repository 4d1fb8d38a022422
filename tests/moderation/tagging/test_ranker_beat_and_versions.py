"""The hourly beat trains only on new reviewer events (a quiet stretch is one row); the page and the command train
on demand and say when nothing is new; the command records who ran it; a training's unexpected error and a run marked
stalled that was still training end as a record a user can read."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from moderation.tagging import ranking, selectors, services
from moderation.tagging.models import TagRanker, TagRankerTraining
from moderation.tagging.tasks import train_tag_ranker
from tests.factories import UserFactory
from tests.moderation.tagging.test_ranker_training_runs import _events

pytestmark = pytest.mark.django_db


def _runs() -> list[tuple[str, str]]:
    return list(TagRankerTraining.objects.order_by("pk").values_list("trigger", "status"))


def test_a_beat_tick_with_no_new_event_trains_nothing_and_a_quiet_stretch_is_one_row(client_as):
    _events(30)
    assert train_tag_ranker.apply(task_id="tick-1").get() == "done"
    first = TagRankerTraining.objects.get()

    assert train_tag_ranker.apply(task_id="tick-2").get() == "unchanged"
    assert train_tag_ranker.apply(task_id="tick-3").get() == "unchanged"
    assert train_tag_ranker.apply(task_id="tick-3").get() == "unchanged"  # redelivered: not counted twice

    assert _runs() == [("beat", "done"), ("beat", "unchanged")]
    assert list(TagRanker.objects.values_list("version", "is_active")) == [(1, True)]
    quiet = TagRankerTraining.objects.get(status="unchanged")
    assert (quiet.checks, quiet.previous_id, quiet.message_id, quiet.ranker_id) == (2, first.pk, "tick-3", None)
    summary = selectors.tag_ranker_run_summary(run=quiet)
    assert summary.startswith(
        f"skipped: no reviewer event since run #{first.pk} read them (it made ranker v1); nothing was trained. "
        "The active ranker (v1) is unchanged. Beat found nothing new 2 times, last at "
    )
    page = client_as("admin").get(reverse("moderation:tag_ranker")).content.decode()
    assert f'data-run="{quiet.pk}" data-run-status="unchanged"' in page and "skipped: no new events" in page
    assert f"none new since run #{first.pk} read them: beat will not retrain" in page
    assert "An hour with nothing new trains nothing and adds no row" in page

    _events(1, seed=5)  # a reviewer answered: the next tick trains on it
    assert train_tag_ranker.apply(task_id="tick-4").get() == "done"
    trained = TagRankerTraining.objects.get(message_id="tick-4")
    assert (trained.previous_id, trained.new_events, trained.ranker.version) == (first.pk, 6, 2)
    assert "(6 new since run #" in selectors.tag_ranker_run_summary(run=trained)
    assert train_tag_ranker.apply(task_id="tick-5").get() == "unchanged"  # a new quiet stretch, after run 4
    assert _runs() == [("beat", "done"), ("beat", "unchanged"), ("beat", "done"), ("beat", "unchanged")]
    assert TagRankerTraining.objects.order_by("-pk").first().previous_id == trained.pk  # type: ignore[union-attr]


def test_a_rollback_stays_until_reviewers_answer_again():
    _events(30, seed=1)
    services.tag_ranker_train(min_events=20)
    _events(30, seed=2)
    services.tag_ranker_train(min_events=20)
    services.tag_ranker_activate(ranker_id=TagRanker.objects.get(version=1).pk, by=UserFactory(role="admin"))

    train_tag_ranker.apply(task_id="tick-after-rollback")

    assert list(TagRanker.objects.order_by("version").values_list("version", "is_active")) == [(1, True), (2, False)]
    quiet = TagRankerTraining.objects.get(message_id="tick-after-rollback")
    assert quiet.status == "unchanged" and "(it made ranker v2)" in quiet.reason and "ranker (v1)" in quiet.reason


def test_the_button_and_the_command_retrain_on_demand_and_say_no_event_is_new(
    client_as, django_capture_on_commit_callbacks
):
    _events(30)
    first = services.tag_ranker_train(min_events=20)
    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("moderation:tag_ranker_train"))
    asked = TagRankerTraining.objects.get(trigger="page")
    assert (asked.status, asked.previous_id, asked.new_events) == ("queued", first.pk, 0)
    page = client.get(reverse("moderation:tag_ranker")).content.decode()
    assert (
        f"queued: waiting for a worker on the default queue (none new since run #{first.pk}: retrained on demand)"
        in page
    )
    assert "With no new events it retrains on the same ones, as asked" in page

    assert train_tag_ranker.apply(args=[asked.pk]).get() == "done"
    asked.refresh_from_db()
    assert asked.ranker is not None and asked.ranker.version == 2
    assert f"180 events on 30 videos (none new since run #{first.pk}: retrained on demand)" in (
        selectors.tag_ranker_run_summary(run=asked)
    )

    out = StringIO()
    call_command("train_tag_ranker", "--min-events", "20", stdout=out)
    assert (
        f"No reviewer event since run #{asked.pk} read them: training on the same events, as asked." in out.getvalue()
    )
    assert TagRanker.objects.get(is_active=True).version == 3


def test_the_command_records_the_user_given_by_by_and_the_os_user(client_as, monkeypatch):
    _events(30)
    monkeypatch.setenv("LOGNAME", "deploy")  # getpass reads the login name from here first
    admin = UserFactory(username="alice", role="admin")

    call_command("train_tag_ranker", "--min-events", "20", "--by", "alice", stdout=StringIO())
    call_command("train_tag_ranker", "--min-events", "20", stdout=StringIO())
    with pytest.raises(CommandError, match="No workbench user “ghost”: --by takes a username; nothing was trained."):
        call_command("train_tag_ranker", "--by", "ghost", stdout=StringIO())

    by_alice, by_os = TagRankerTraining.objects.order_by("pk")
    assert (by_alice.requested_by, by_alice.operator) == (admin, "deploy")
    assert (by_os.requested_by, by_os.operator) == (None, "deploy")
    assert TagRankerTraining.objects.count() == 2 and by_alice.ranker.trained_by == admin  # type: ignore[union-attr]
    page = client_as("admin").get(reverse("moderation:tag_ranker")).content.decode()
    assert "<td>alice (manage.py train_tag_ranker, OS user deploy)</td>" in page
    assert "<td>manage.py train_tag_ranker (by deploy)</td>" in page


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ranking.np.linalg.LinAlgError("SVD did not converge."),
            "Training failed (LinAlgError): SVD did not converge. The active ranker is unchanged; "
            "the traceback is in the worker's or the command's log.",
        ),
        (
            RuntimeError(),
            "Training failed (RuntimeError, with no message). The active ranker is unchanged; "
            "the traceback is in the worker's or the command's log.",
        ),
    ],
)
def test_an_unexpected_error_while_training_is_recorded_in_words_and_changes_nothing(
    client_as, monkeypatch, error, said
):
    _events(30)
    services.tag_ranker_train(min_events=20)
    _events(5, seed=4)

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise error

    monkeypatch.setattr(ranking, "fit_linear", fails)
    run = services.tag_ranker_train(min_events=20)

    assert run.status == "failed" and run.error == said and run.ranker is None and run.finished_at is not None
    assert list(TagRanker.objects.values_list("version", "is_active")) == [(1, True)]
    page = client_as("admin").get(reverse("moderation:tag_ranker")).content.decode()
    assert f'<span class="error" role="alert" data-run-error>failed: {said}' in page.replace("&#x27;", "'")


@pytest.mark.django_db(transaction=True)
def test_a_run_marked_stalled_while_it_was_still_training_keeps_no_ranker_and_its_record_says_so(monkeypatch):
    """The run's worker was slow, not lost: a beat tick past STALLED_AFTER marks it failed and starts a run in its
    place. When the slow run finishes, the page still says failed, so it must not make a ranker active: its record
    says it finished after all and that its result was not kept; the run in its place trains."""
    _events(30)
    first = services.tag_ranker_train(min_events=20)
    slow = services.tag_ranker_training_request(trigger="command", min_events=20)
    fitting, marked = threading.Event(), threading.Event()
    real_classifiers = services.tag_classifiers_train

    def classifiers_after_the_mark(**kwargs):  # type: ignore[no-untyped-def]
        fitting.set()
        assert marked.wait(60)
        return real_classifiers(**kwargs)

    monkeypatch.setattr(services, "tag_classifiers_train", classifiers_after_the_mark)
    outcome: list[object] = []

    def train() -> None:
        try:
            outcome.append(services.tag_ranker_training_run(run_id=slow.pk))
        except Exception as exc:  # the main thread reports it
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=train)
    worker.start()
    try:
        assert fitting.wait(60)
        long_ago = timezone.now() - TagRankerTraining.STALLED_AFTER - timedelta(minutes=1)
        TagRankerTraining.objects.filter(pk=slow.pk).update(started_at=long_ago)
        # Nothing new since the first run, yet this tick starts a real run: it stands in for the lost one.
        replacement = services.tag_ranker_training_request(trigger="beat", message_id="tick-during-slow-run")
    finally:
        marked.set()
        worker.join(60)

    slow.refresh_from_db()
    assert not isinstance(outcome[0], Exception), outcome
    assert slow.status == "failed" and slow.ranker is None and slow.last_event_id is None
    assert slow.error.startswith(
        "No result 30 minutes after it started: its worker was lost. A new run was started. "
        "It was still training after all and finished at "
    )
    assert slow.error.endswith(": its new ranker version was not kept (a run marked failed activates nothing).")
    assert list(TagRanker.objects.values_list("version", "is_active")) == [(1, True)]
    assert replacement.status == "queued" and replacement.trigger == "beat"

    monkeypatch.setattr(services, "tag_classifiers_train", real_classifiers)
    done = services.tag_ranker_training_run(run_id=replacement.pk)
    assert done.status == "done" and done.ranker.version == 2 and done.previous_id == first.pk
