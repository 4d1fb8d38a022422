""" "Queue new Tag2CoT tasks": one set-based statement whatever the labelled history, and a message that counts only
what the labeler may see.

Before, a press read every human label and override, then every labelled video's latest decision with its policy
version and correction, into Python to find the few items due a task (at 50,000 labelled videos, seconds a press:
``bench/tag2cot_press.py``); and its message counted the tasks it opened and the items it left on videos of a
restricted review queue the presser may not see ("Queued 3 new Tag2CoT tasks" over a list showing one).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation.models import CotCorrection, Tag2CotTask
from annotation.selectors import tag2cot_due_count
from annotation.services import tag2cot_tasks_queue
from moderation.inference.models import ModelVersion
from moderation.labels.models import ItemLabel
from moderation.review.models import ReviewQueue, ReviewTask
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory

pytestmark = pytest.mark.django_db

WRONG = "引导私下交易"  # a tag of the test policy the model did not reach ("正向": the safe label it gave)


def _labelled(policy_version: Any, *, label: str = WRONG, source: str = "import", **decision: Any) -> Any:
    decision = DecisionFactory(policy_version=policy_version, **{"label": "正向", **decision})
    ItemLabel.objects.create(video=decision.video, label=label, source=source)
    return decision


def _restricted_to_others() -> ReviewQueue:
    """A moderation queue restricted to a group the labelers of these tests are not in."""
    queue = ReviewQueue.objects.create(slug="experts", name="Experts")
    queue.allowed_groups.add(Group.objects.create(name="experts"))
    return queue


@pytest.fixture
def serving_baseline(db: Any) -> None:
    ModelVersion.objects.create(name="evidence-baseline-v1", backend="evidence_baseline", is_serving=True)


def test_the_press_message_counts_only_tasks_and_items_on_videos_the_labeler_may_see(
    policy_version: Any, make_user: Any, settings: Any, serving_baseline: None
) -> None:
    settings.TAG2COT_OPEN_LIMIT = 2
    experts = _restricted_to_others()
    # In video id order: an open item, two in the restricted queue, two more open ones.
    first = _labelled(policy_version)
    hidden = [_labelled(policy_version) for _ in range(2)]
    for decision in hidden:
        ReviewTask.objects.create(decision=decision, queue=experts)
    for _ in range(2):
        _labelled(policy_version)
    labeler = make_user("labeler")
    client = Client()
    client.force_login(labeler)

    page = client.post(reverse("annotation:tag2cot_queue"), follow=True).content.decode()

    # The press opened two tasks (the first two items due: the open one and a restricted one), and left three items
    # due, one of them restricted: the labeler is told of the one task and the two items they may see.
    assert sorted(Tag2CotTask.objects.values_list("decision_id", flat=True)) == [first.pk, hidden[0].pk]
    assert "Queued 1 new Tag2CoT task; 2 more items are due a task" in page, page
    assert "Queued 2" not in page and "3 more items" not in page
    # A member of the restricted queue's group is told of every one.
    member = make_user("labeler")
    member.groups.add(experts.allowed_groups.get())
    opening = tag2cot_tasks_queue(user=member)
    assert (opening.seen, str(opening.left)) == (2, "1")  # the second restricted item and one open, then one open


def test_a_press_with_only_restricted_items_due_says_there_is_nothing_for_the_labeler(
    policy_version: Any, client_as: Any, serving_baseline: None
) -> None:
    experts = _restricted_to_others()
    decision = _labelled(policy_version)
    ReviewTask.objects.create(decision=decision, queue=experts)

    page = client_as("labeler").post(reverse("annotation:tag2cot_queue"), follow=True).content.decode()

    assert Tag2CotTask.objects.filter(decision=decision).exists()  # opened for the queue's own labelers
    assert "No Tag2CoT tasks to queue" in page and "Queued 1" not in page


def test_the_press_reads_no_labelled_item_into_python_and_its_statements_do_not_grow_with_the_history(
    policy_version: Any, serving_baseline: None
) -> None:
    def press_statements() -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            opened = tag2cot_tasks_queue()
        assert len(opened.created) == 1
        return [q["sql"].strip() for q in ctx.captured_queries]

    _labelled(policy_version)
    small = press_statements()
    for _ in range(30):  # a history of labelled items whose tasks earlier presses opened and labelers wrote
        done = _labelled(policy_version)
        Tag2CotTask.objects.create(
            decision=done, video=done.video, policy_version=policy_version, target_label=WRONG, status="done"
        )
    _labelled(policy_version)
    large = press_statements()

    assert len(large) == len(small)
    inserts = [sql for sql in large if "INSERT INTO annotation_tag2cottask" in sql]
    assert len(inserts) == 1
    # The labelled history is read once, by the statement that opens the tasks and counts those left (the count's
    # own pass grew with the history as the insert's did; then a temporary table of the items due took two more
    # statements, its creation and its drop).
    history_reads = [sql for sql in large if "moderation_itemlabel" in sql]
    assert history_reads == inserts and history_reads[0].startswith("WITH due AS MATERIALIZED")
    assert not [sql for sql in large if "TEMPORARY" in sql.upper() or sql.startswith("DROP")], large
    # No statement of the press reads labels, overrides or decisions row by row (the old press's reads).
    row_reads = ('SELECT "moderation_itemlabel".', 'SELECT "moderation_review".', 'SELECT DISTINCT ON ("moderation')
    assert not [sql for sql in large if sql.startswith(row_reads)], large


def test_the_items_due_follow_the_label_rules(policy_version: Any, serving_baseline: None) -> None:
    """The rules the Python loop applied, now in SQL: the human label by source (adjudication, then the latest
    override, then a review, then an import; an empty label is none), the video's latest decision, a label its policy
    version knows, no accepted correction, the model not reaching the label, no task for that decision and label."""
    adjudicated = _labelled(policy_version, label="正向", source="import")
    ItemLabel.objects.create(video=adjudicated.video, label=WRONG, source="adjudication")
    overridden = _labelled(policy_version, label="正向", source="review")
    ReviewFactory(task__decision=overridden, decision=overridden, label="正向", verdict="override")
    ReviewFactory(task__decision=overridden, decision=overridden, label=WRONG, verdict="override", task__slot=1)
    empty_review = _labelled(policy_version, label="", source="review")
    ItemLabel.objects.create(video=empty_review.video, label=WRONG, source="import")
    unknown = _labelled(policy_version, label="not a tag of this policy")
    reached = _labelled(policy_version, label="正向")
    unparsed = _labelled(policy_version, label="正向", parse_error="no final judgment")
    corrected = _labelled(policy_version)
    CotCorrectionFactory(decision=corrected, label=WRONG, status=CotCorrection.Status.ACCEPTED)
    draft_corrected = _labelled(policy_version)
    CotCorrectionFactory(decision=draft_corrected, label=WRONG, status=CotCorrection.Status.SUBMITTED)
    later = _labelled(policy_version)
    newer_model = ModelVersion.objects.create(name="newer", backend="evidence_baseline")
    latest = DecisionFactory(video=later.video, policy_version=policy_version, model_version=newer_model, label="正向")
    tasked = _labelled(policy_version)
    Tag2CotTask.objects.create(
        decision=tasked, video=tasked.video, policy_version=policy_version, target_label="正向", label_source="import"
    )

    opened = {(t.decision_id, t.target_label, t.label_source) for t in tag2cot_tasks_queue().created}

    assert opened == {
        (adjudicated.pk, WRONG, "adjudication"),
        (overridden.pk, WRONG, "override"),  # the latest override
        (empty_review.pk, WRONG, "import"),
        (unparsed.pk, "正向", "import"),  # reached the label, but with no parse: the model's reasoning is unusable
        (draft_corrected.pk, WRONG, "import"),
        (latest.pk, WRONG, "import"),
        (tasked.pk, WRONG, "import"),  # its task is for another label
    }
    assert unknown.pk not in {d for d, _, _ in opened} and reached.pk not in {d for d, _, _ in opened}
    task = Tag2CotTask.objects.get(decision=overridden)
    assert task.status == "open" and [s["key"] for s in task.stages][-1] == "final_judgment"
    assert task.stages[-1]["text"] == f"label: {WRONG}" and task.draft_source == "baseline"
    assert tag2cot_tasks_queue().created == []  # idempotent


def test_the_items_left_due_are_counted_as_far_as_a_cap(policy_version: Any, serving_baseline: None) -> None:
    for _ in range(3):
        _labelled(policy_version)
    assert str(tag2cot_due_count(cap=2)) == "2+" and not tag2cot_due_count(cap=2).exact
    assert str(tag2cot_due_count(cap=3)) == "3" and tag2cot_due_count(cap=3).exact
