"""Follow-ups from the hux18 walk of the cascade dashboard: its two target boxes, its accuracies in percent, and
a training that waits on a busy or unconsumed default queue."""

from __future__ import annotations

import re
from html import unescape

from django.urls import reverse

from moderation.inference.cascade_models import CascadeModel
from moderation.labels.models import ItemLabel
from tests.factories import DecisionFactory
from workbench.formatting import percent_text


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_two_target_accuracy_boxes_say_what_each_sets(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked: "Target accuracy" twice on one page (the retrain form's and the routing form's), told apart only by
    the buttons beside them; each box's label now says what it sets."""
    CascadeModel.objects.create(
        name="stage1", artifact_path="models/stage1.joblib", escalate_threshold=0.57, is_active=True, trained_on=101
    )
    page = client_as("admin").get(reverse("moderation:cascade")).content.decode()
    train = page.split('id="train-form"')[1].split("</form>")[0]
    route = page.split('id="target-form"')[1].split("</form>")[0]
    assert "<label>Target accuracy <input" not in page
    train_label = _text(train.split('<label id="train-target-label">')[1].split("<input")[0])
    route_label = _text(route.split('<label id="route-target-label">')[1].split("<input")[0])
    assert train_label == "Target accuracy for the retrained model (sets its threshold when training ends)"
    assert route_label == "Target accuracy to route by now (the active model, no retraining)"


def test_accuracy_per_stage_is_in_percent_as_the_charts_beside_it(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked: "Accuracy per stage" read 0.667 under charts, targets and tables all in percent."""
    for label in ("正向", "正向", "引导私下交易"):
        decision = DecisionFactory(policy_version=policy_version, video__file="", label="正向", is_violation=False)
        ItemLabel.objects.create(video=decision.video, label=label, source="import")
    page = client_as("admin").get(reverse("moderation:cascade")).content.decode()
    table = _text(page.split("Accuracy per stage")[1].split("</table>")[0])
    assert "stage 1 in front) 66.7% 66.7%" in table and "0.667" not in table
    assert percent_text(0.743) == "74.3%" and percent_text(None, "–") == "–" and percent_text(-0.0001) == "0.0%"


def _send(task: str, *args: object) -> None:
    """A real message on the default queue (as ``workbench.queues.enqueue`` sends it), no worker to take it."""
    from workbench.celery import app

    app.send_task(task, args=list(args), queue="default")


def _clear_broker() -> None:
    from workbench.health import HEARTBEAT_PREFIX, _redis

    redis = _redis()
    redis.delete("default", "unacked", "unacked_index")
    for key in redis.scan_iter(match=HEARTBEAT_PREFIX + "*"):
        redis.delete(key)


TRAIN = "moderation.inference.tasks.train_cascade"


def test_a_queued_training_says_how_many_tasks_are_ahead_and_whether_a_worker_takes_them(  # type: ignore[no-untyped-def]
    client_as, settings
) -> None:
    """Walked: a stage-1 training click read "queued — waiting for a worker on the default queue" for 20 minutes
    (under ./run.sh the default queue shares the busy media worker), with no word of how long nor whether any worker
    would take it. The line now counts the tasks queued ahead of it in the broker and says when no worker consumes
    the queue; with the broker down it says so (no 500)."""
    from moderation.inference.cascade_models import CascadeTraining
    from workbench.health import worker_heartbeat

    training = CascadeTraining.objects.create(name="stage1")
    admin = client_as("admin")
    polled = reverse("moderation:cascade") + "?part=training"

    _clear_broker()
    try:
        for n in range(3):  # three earlier tasks, then this training's own message
            _send("moderation.media.tasks.process_video", training.pk + n)
        _send(TRAIN, training.pk)
        line = _text(admin.get(polled, HTTP_HX_REQUEST="true").content.decode())
        assert "3 tasks are queued ahead of it on that queue." in line
        assert "No worker consumes the default queue now" in line and "nothing is lost meanwhile" in line

        worker_heartbeat(hostname="media@box", queues=["default", "media"])
        _clear_broker()
        worker_heartbeat(hostname="media@box", queues=["default", "media"])
        _send(TRAIN, training.pk)
        page = _text(admin.get(reverse("moderation:cascade")).content.decode())
        assert "Nothing else is queued ahead of it; consumed by media@box" in page
        assert "No worker consumes" not in page
    finally:
        _clear_broker()

    settings.REDIS_CLIENT_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    down = admin.get(polled, HTTP_HX_REQUEST="true")
    assert down.status_code == 200 and "The broker did not answer" in down.content.decode()


def test_a_queued_training_counts_only_the_tasks_a_worker_takes_before_it(client_as) -> None:  # type: ignore[no-untyped-def]
    """The line counted the queue's length less one (the training's own message): the tasks queued after it were
    counted as ahead of it, and once a worker had taken its message (prefetched behind the task it is on, not
    started: the training still reads "queued") the count was one low, the message no longer being on the queue.
    Now its message is found: on the queue, the messages taken before it are counted; taken, the line says so."""
    from kombu import Exchange, Queue

    from moderation.inference.cascade_models import CascadeTraining
    from workbench.celery import app

    training = CascadeTraining.objects.create(name="stage1")
    admin = client_as("admin")
    polled = reverse("moderation:cascade") + "?part=training"

    def line() -> str:
        return _text(admin.get(polled, HTTP_HX_REQUEST="true").content.decode())

    _clear_broker()
    try:
        _send("moderation.media.tasks.process_video", training.pk)  # before it (same first argument, another task)
        _send(TRAIN, training.pk + 1)  # another training's message: not this one
        _send(TRAIN, training.pk)
        for n in range(2):  # queued after it: not ahead of it
            _send("moderation.media.tasks.process_video", 100 + n)
        assert "2 tasks are queued ahead of it on that queue." in line()  # was 4

        with app.connection_for_read() as connection:
            # A worker's consumer takes messages as a prefetching worker does: off the queue, into the unacked hash.
            queue = connection.SimpleQueue(Queue("default", Exchange("default"), "default"))
            taken = [queue.get(timeout=2), queue.get(timeout=2)]
            assert "Nothing else is queued ahead of it" in line()
            taken.append(queue.get(timeout=2))  # this training's message, taken and not started
            assert CascadeTraining.objects.get().status == CascadeTraining.Status.QUEUED
            text = line()
            assert "A worker has taken it: it starts once that worker finishes the task it is on" in text
            assert "queued ahead of it" not in text  # was "1 task is queued ahead of it": one low, and behind it
            for message in taken:
                message.ack()
            queue.close()
        # Found nowhere (lost): every waiting task is ahead of it, as the queue's length says.
        assert "2 tasks are queued ahead of it on that queue." in line()
    finally:
        _clear_broker()
