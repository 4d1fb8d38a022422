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


def test_a_queued_training_says_how_many_tasks_are_ahead_and_whether_a_worker_takes_them(  # type: ignore[no-untyped-def]
    client_as, settings
) -> None:
    """Walked: a stage-1 training click read "queued — waiting for a worker on the default queue" for 20 minutes
    (under ./run.sh the default queue shares the busy media worker), with no word of how long nor whether any worker
    would take it. The line now counts the tasks queued ahead of it in the broker and says when no worker consumes
    the queue; with the broker down it says so (no 500)."""
    from moderation.inference.cascade_models import CascadeTraining
    from workbench.health import HEARTBEAT_PREFIX, _redis, worker_heartbeat

    CascadeTraining.objects.create(name="stage1")
    admin = client_as("admin")
    polled = reverse("moderation:cascade") + "?part=training"
    redis = _redis()

    def clear() -> None:
        redis.delete("default")
        for key in redis.scan_iter(match=HEARTBEAT_PREFIX + "*"):
            redis.delete(key)

    clear()
    try:
        redis.rpush("default", *["{}"] * 4)  # three earlier tasks and this training's own message
        line = _text(admin.get(polled, HTTP_HX_REQUEST="true").content.decode())
        assert "3 tasks are queued ahead of it on that queue." in line
        assert "No worker consumes the default queue now" in line and "nothing is lost meanwhile" in line

        worker_heartbeat(hostname="media@box", queues=["default", "media"])
        redis.delete("default")
        redis.rpush("default", "{}")
        page = _text(admin.get(reverse("moderation:cascade")).content.decode())
        assert "Nothing else is queued ahead of it; consumed by media@box" in page
        assert "No worker consumes" not in page
    finally:
        clear()

    settings.REDIS_CLIENT_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    down = admin.get(polled, HTTP_HX_REQUEST="true")
    assert down.status_code == 200 and "The broker did not answer" in down.content.decode()
