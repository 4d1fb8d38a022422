"""Tag2CoT: items with a human label but no acceptable CoT get a "write the reasoning" task."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.errors import AnnotationError
from annotation.models import CotCorrection, Tag2CotTask
from annotation.services import tag2cot_tasks_queue, tag2cot_write
from moderation.inference.models import ModelVersion
from moderation.labels.models import ItemLabel
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, SegmentFactory

pytestmark = pytest.mark.django_db
STAGE_KEYS = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


def test_queue_picks_labelled_items_without_acceptable_cot_once(policy_version):
    ModelVersion.objects.create(name="evidence-baseline-v1", backend="evidence_baseline", is_serving=True)
    wrong = DecisionFactory(policy_version=policy_version, label="正向")
    SegmentFactory(video=wrong.video, text="add my wechat to buy cheaper", start=2.0)
    ItemLabel.objects.create(video=wrong.video, label="引导私下交易", source="import")
    right = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=right.video, label="正向", source="review")
    unparsed = DecisionFactory(policy_version=policy_version, label="", cot=[], parse_error="no final judgment")
    ReviewFactory(task__decision=unparsed, decision=unparsed, label="引导私下交易")  # an override review
    accepted = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=accepted.video, label="引导私下交易", source="review")
    CotCorrectionFactory(decision=accepted, label="引导私下交易", status=CotCorrection.Status.ACCEPTED)
    DecisionFactory(policy_version=policy_version, label="正向")  # no human label at all

    created = tag2cot_tasks_queue().created
    assert sorted((t.decision_id, t.target_label) for t in created) == sorted(
        [(wrong.pk, "引导私下交易"), (unparsed.pk, "引导私下交易")]
    )
    assert tag2cot_tasks_queue().created == []  # idempotent
    task = Tag2CotTask.objects.get(decision=wrong)
    # Evidence baseline serving: the extraction stage is pre-filled from the baseline.
    assert task.draft_source == "baseline" and "add my wechat" in task.stages[0]["text"]
    assert task.stages[-1]["text"] == "label: 引导私下交易" and task.label_source == "import"


def test_labeler_writes_the_five_stages_for_the_label(policy_version, make_user):
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    [task] = tag2cot_tasks_queue().created
    alice, bob = make_user("labeler"), make_user("labeler")
    ca, cb = Client(), Client()
    ca.force_login(alice)
    cb.force_login(bob)
    url = reverse("annotation:tag2cot_write", args=[task.pk])
    assert ca.post(reverse("annotation:tag2cot_claim", args=[task.pk])).status_code == 302  # the page's button
    html = ca.get(url).content.decode()
    assert all(f'name="stage-{k}"' in html for k in STAGE_KEYS) and "引导私下交易" in html
    # The rule the final stage is checked against is said beside it, not only after a refused save.
    assert "This stage must name the label “引导私下交易”" in html
    assert "is writing this reasoning" in cb.get(url).content.decode()  # Alice holds it

    form = {f"stage-{k}": f"<i>{k}</i> reasoning" for k in STAGE_KEYS}
    resp = ca.post(url, {**form, "stage-analysis": ""})
    assert resp.status_code == 400 and "cannot be empty" in resp.content.decode()
    resp = ca.post(url, {**form, "stage-analysis": "x" * 8001})
    assert resp.status_code == 400 and "8,001 characters long; a stage may hold at most 8,000" in resp.content.decode()
    resp = ca.post(url, form)
    assert resp.status_code == 400 and "must name the label “引导私下交易” as written here" in resp.content.decode()
    resp = ca.post(
        url, {**form, "stage-final_judgment": "label: 引导私下交易, steering buyers off-platform"}, follow=True
    )
    # Walk hwalk20: it said "Reasoning for “引导私下交易” saved." over a list where the task was no longer shown.
    said = f"Task #{task.pk}: reasoning for “引导私下交易” saved; it is listed under Done."
    assert resp.redirect_chain[-1][0] == reverse("annotation:tag2cot_list") and said in resp.content.decode()
    task.refresh_from_db()
    assert task.status == "done" and task.author == alice and task.stages[1]["text"] == "<i>analysis</i> reasoning"
    with pytest.raises(AnnotationError, match="already written"):
        tag2cot_write(task=task, author=alice, stages=form)
    assert "&lt;i&gt;analysis&lt;/i&gt;" in ca.get(url).content.decode()


def test_queue_button_and_list(policy_version, client_as):
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    client = client_as("labeler")
    assert client.post(reverse("annotation:tag2cot_queue")).status_code == 302
    html = client.get(reverse("annotation:tag2cot_list")).content.decode()
    assert decision.video.title in html and "引导私下交易" in html
    assert client_as("moderator").post(reverse("annotation:tag2cot_queue")).status_code == 403


def test_queue_button_says_what_it_queued_and_why_nothing_when_nothing(policy_version, client_as):
    """Seen in Chromium: a second press said "Queued 0 new Tag2CoT task(s)." in green, as if it had worked."""
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    client = client_as("labeler")

    first = client.post(reverse("annotation:tag2cot_queue"), follow=True).content.decode()
    assert "Queued 1 new Tag2CoT task." in first

    again = client.post(reverse("annotation:tag2cot_queue"), follow=True).content.decode()
    assert "Queued 0" not in again
    assert "No new Tag2CoT tasks" in again and "already has a task" in again


def test_the_list_offers_write_only_for_a_task_one_may_write(policy_version, make_user):
    """A task another labeler holds was listed with "Write", which opened a page saying to pick another task."""
    from annotation.services import tag2cot_claim

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    task = Tag2CotTask.objects.create(
        video=decision.video, decision=decision, policy_version=policy_version, target_label="引导私下交易"
    )
    alice, bob = make_user("labeler"), make_user("labeler")
    tag2cot_claim(task=task, user=alice)
    link = f'href="{reverse("annotation:tag2cot_write", args=[task.pk])}">'

    def listed_for(user):  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return client.get(reverse("annotation:tag2cot_list")).content.decode()

    assert f"{link}Continue</a>" in listed_for(alice)
    assert f"{link}View</a>" in listed_for(bob) and f"{alice} (writing)" in listed_for(bob)
    Tag2CotTask.objects.filter(pk=task.pk).update(assigned_to=None, lease_expires_at=None)
    assert f"{link}Write</a>" in listed_for(bob)


def test_a_lapsed_hold_is_said_as_lapsed_not_as_held_until_a_past_time(policy_version, make_user):
    """After the lease ran out the holder's page still read "held for you until 02:35" at 02:44."""
    from datetime import timedelta

    from django.utils import timezone

    from annotation.services import tag2cot_claim

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    stages = [{"key": "final_judgment", "title": "Final judgment", "text": "label: 引导私下交易", "evidence": []}]
    task = Tag2CotTask.objects.create(
        video=decision.video, decision=decision, policy_version=policy_version, target_label="引导私下交易",
        stages=stages,
    )  # fmt: skip
    alice = make_user("labeler")
    tag2cot_claim(task=task, user=alice)
    client = Client()
    client.force_login(alice)
    url = reverse("annotation:tag2cot_write", args=[task.pk])
    assert "held for you until" in client.get(url).content.decode()

    Tag2CotTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=9))
    page = client.get(url).content.decode()

    assert "Your hold on this task lapsed at" in page and "held for you until" not in page
    assert "Keep it longer" in page and 'name="stage-' in page  # still theirs to save while no one took it


def test_vlm_serving_queues_a_model_assisted_draft_on_the_infer_queue(
    policy_version, django_capture_on_commit_callbacks
):
    import json

    from workbench.celery import app

    ModelVersion.objects.create(name="vlm-x", backend="transformers", base_model="m", is_serving=True)
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    with app.connection_for_write() as conn:
        redis = conn.default_channel.client
        redis.delete("infer")
        with django_capture_on_commit_callbacks(execute=True):
            [task] = tag2cot_tasks_queue().created
        messages = [json.loads(m) for m in redis.lrange("infer", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages] == [
        ("annotation.tasks.draft_tag2cot", f"[{task.pk}]")
    ]
    assert task.draft_source == ""  # the worker fills it in


def test_an_unknown_status_filter_is_said_and_every_task_listed(policy_version, client_as):
    """``?status=banana`` was echoed as a filter: "No banana Tag2CoT tasks." under an "Open" tab, tasks hidden."""
    open_one = DecisionFactory(policy_version=policy_version, label="正向")
    done_one = DecisionFactory(policy_version=policy_version, label="正向")
    for decision, status in ((open_one, "open"), (done_one, "done")):
        Tag2CotTask.objects.create(
            video=decision.video, decision=decision, policy_version=policy_version, target_label="引导私下交易",
            status=status,
        )  # fmt: skip
    client = client_as("labeler")
    url = reverse("annotation:tag2cot_list")

    response = client.get(url, {"status": "banana<b>"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "There is no Tag2CoT status “banana&lt;b&gt;”: showing every task." in html and 'role="alert"' in html
    assert "banana Tag2CoT" not in html and "<b>" not in html
    assert open_one.video.title in html and done_one.video.title in html
    assert '<strong aria-current="page">All</strong>' in html and 'href="?status=open"' in html
    # The known filters stay as they were, with no message.
    opened = client.get(url).content.decode()
    assert open_one.video.title in opened and done_one.video.title not in opened and "no Tag2CoT status" not in opened
    done = client.get(url, {"status": "done"})
    assert done.status_code == 200 and done_one.video.title in done.content.decode()
    assert open_one.video.title not in done.content.decode()


def test_a_refused_stage_is_said_on_that_stage_which_takes_the_focus(policy_version, make_user):
    """A save refused for one stage (empty, too long, a final judgment without the label) was said only in the
    page's message at the top: the stage itself was not marked and the focus stayed on the page, so a labeler
    scrolled five stages to find it. Now, as on the correction screen, the stage says it and takes the focus."""
    import re

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    [task] = tag2cot_tasks_queue().created
    client = Client()
    client.force_login(make_user("labeler"))
    client.post(reverse("annotation:tag2cot_claim", args=[task.pk]))
    url = reverse("annotation:tag2cot_write", args=[task.pk])
    form = {f"stage-{k}": f"{k} reasoning" for k in STAGE_KEYS}

    def marked(html: str) -> list[str]:
        return re.findall(r'<textarea id="t2c-stage-(\w+)"[^>]*aria-invalid="true" autofocus', html)

    html = client.post(url, {**form, "stage-intermediate_check": " "}).content.decode()
    assert marked(html) == ["intermediate_check"]
    assert 'id="t2c-error-intermediate_check" role="alert">Stage “Intermediate check” cannot be empty.' in html
    assert "intermediate_check reasoning" not in html and "analysis reasoning" in html  # what was typed is kept

    html = client.post(url, form).content.decode()
    assert marked(html) == ["final_judgment"]
    assert 'aria-describedby="t2c-error-final_judgment t2c-final-hint"' in html
    assert 'id="t2c-error-final_judgment" role="alert">The final judgment must name the label' in html


def test_queue_button_is_bounded_and_counts_the_drafts_still_waiting(
    policy_version, client_as, settings, django_capture_on_commit_callbacks
):
    """One press (a labeler's too) queued a model draft on the infer queue, the one live decisions wait on, for
    every labelled item without a usable CoT: an import of thousands queued thousands, and pressing again stacked
    more. Now a press opens at most TAG2COT_OPEN_LIMIT less the drafts still waiting, and says so."""
    import json

    from workbench.celery import app

    settings.TAG2COT_OPEN_LIMIT = 3
    ModelVersion.objects.create(name="vlm-x", backend="transformers", base_model="m", is_serving=True)
    for _ in range(5):
        decision = DecisionFactory(policy_version=policy_version, label="正向")
        ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="import")
    client = client_as("labeler")
    url = reverse("annotation:tag2cot_queue")
    assert "One press queues at most 3." in client.get(reverse("annotation:tag2cot_list")).content.decode()

    with app.connection_for_write() as conn:
        redis = conn.default_channel.client
        redis.delete("infer")

        def press() -> str:
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(url, follow=True).content.decode()

        first = press()
        assert "Queued 3 new Tag2CoT tasks; 2 more items are due a task: one press queues at most 3" in first
        assert redis.llen("infer") == 3 and Tag2CotTask.objects.count() == 3

        again = press()  # the three drafts have not come back: nothing more goes on the queue
        assert "No new Tag2CoT task was queued; 2 more items are due a task: at most 3 model drafts" in again
        assert "3 from earlier presses were still waiting" in again
        assert "None can be queued now: 3 model drafts are still waiting" in again
        assert redis.llen("infer") == 3 and Tag2CotTask.objects.count() == 3

        # One draft came back and one task was written by hand before its draft: two places free.
        first_task, second_task, _ = Tag2CotTask.objects.order_by("pk")
        Tag2CotTask.objects.filter(pk=first_task.pk).update(draft_source=Tag2CotTask.DraftSource.MODEL)
        Tag2CotTask.objects.filter(pk=second_task.pk).update(status=Tag2CotTask.Status.DONE)
        third = press()
        messages = [json.loads(m) for m in redis.lrange("infer", 0, -1)]
    assert "Queued 2 new Tag2CoT tasks." in third and "due a task" not in third
    assert len(messages) == 5 and Tag2CotTask.objects.count() == 5
    assert "None can be queued now: 3 model drafts are still waiting" in third  # 1 earlier, 2 new


def test_an_accepted_correction_closes_the_open_task_of_its_decision(policy_version, make_user):
    """A task opened before a correction of its decision was accepted stayed open: a labeler could still write a
    second CoT for the decision. Accepting closes it (superseded, naming the correction), the list says so under
    its own tab, writing it is refused, and the SFT data holds the correction alone."""
    from annotation.services import cot_correction_accept, cot_correction_save
    from training.data import sft_records_collect

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=decision.video, label="引导私下交易", source="review")
    other = DecisionFactory(policy_version=policy_version, label="正向")
    ItemLabel.objects.create(video=other.video, label="引导私下交易", source="review")
    task, untouched = sorted(tag2cot_tasks_queue().created, key=lambda t: t.decision_id != decision.pk)
    alice, bob, carol = make_user("labeler"), make_user("labeler"), make_user("labeler")
    ca = Client()
    ca.force_login(alice)
    assert ca.post(reverse("annotation:tag2cot_claim", args=[task.pk])).status_code == 302  # Alice is writing it
    correction = CotCorrectionFactory(decision=decision, label="引导私下交易", author=bob)

    cot_correction_accept(correction=correction, by=carol, base_revision=correction.revision)

    task.refresh_from_db()
    untouched.refresh_from_db()
    assert (task.status, task.superseded_by_id, task.lease_expires_at) == ("superseded", correction.pk, None)
    assert untouched.status == "open"  # another decision's task stays
    form = {f"stage-{k}": f"label: 引导私下交易 {k}" for k in STAGE_KEYS}
    resp = ca.post(reverse("annotation:tag2cot_write", args=[task.pk]), form)
    assert resp.status_code == 400 and f"correction #{correction.pk} of the same decision was accepted" in (
        resp.content.decode()
    )
    listed = ca.get(reverse("annotation:tag2cot_list"), {"status": "superseded"}).content.decode()
    assert f"#{task.pk}<" in listed and f'superseded by <a href="/annotation/corrections/{decision.pk}/">' in listed
    assert f"correction #{correction.pk}</a>" in listed and f"#{untouched.pk}<" not in listed
    assert f"#{task.pk}<" not in ca.get(reverse("annotation:tag2cot_list")).content.decode()  # gone from Open
    records = [r for r in sft_records_collect() if r.decision_id == decision.pk]
    assert [r.source for r in records] == ["correction"]

    # Revised, the correction is not accepted any more (it may yet be rejected): the task is open again.
    stages = {s["key"]: s["text"] for s in correction.stages}
    cot_correction_save(
        decision=decision, author=bob, stages=stages, label="引导私下交易", base_revision=correction.revision
    )
    task.refresh_from_db()
    assert (task.status, task.superseded_by_id) == ("open", None)
