"""The calibrated cascade set by a target accuracy, the risk–coverage curve on the dashboard, the
queue that serves the most valuable labels first, beat retraining, and the learning-curve simulation."""

from __future__ import annotations

import random

import numpy as np
import pytest

from moderation.feedback.models import FeedbackAggregate
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.services import cascade_retrain_if_due, cascade_target_set, cascade_train
from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.learning import LearningCurves, simulate_learning_curves
from moderation.inference.stage1.model import Stage1Config
from moderation.inference.stage1.routing import cut_for_target, entropy_for_confidence
from moderation.models import ItemLabel, PolicyVersion, ReviewQueue
from moderation.review.services import review_claim_next, review_tasks_create_for_decision
from tests.factories import DecisionFactory, PolicyVersionFactory, VideoFactory
from tests.moderation.inference.kuaimod_samples import write_split

DEAL, SAFE = "引导私下交易", "正向"


@pytest.fixture
def trained(db, tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MODELS_DIR = tmp_path / "models"
    PolicyVersionFactory()
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    return cascade_train(name="stage1", target_accuracy=0.9)


def test_the_admin_picks_a_target_on_the_curve_and_the_curve_follows_the_reviews(trained, client_as, settings):
    admin = client_as("admin")
    page = admin.get("/cascade/").content.decode()
    assert 'id="risk-coverage"' in page and "held-out (inner-fold) predictions of its 24 training items" in page
    assert page.count('id="cascade-curves"') == 1  # the panel is drawn once (a merge had left two copies)
    assert "Auto-decide where expected accuracy ≥ 90% → covers" in page

    response = admin.post("/cascade/target/", {"target_accuracy": "80%"}, follow=True)
    assert "expected accuracy is at least 80%" in response.content.decode()
    trained.refresh_from_db()
    cut = cut_for_target(trained.metrics["held_out_curve"], 0.8)
    assert trained.target_accuracy == pytest.approx(0.8)
    assert trained.escalate_threshold == pytest.approx(entropy_for_confidence(cut))
    for bad in ("lots", "1.5", "0.2"):
        assert (
            "target accuracy must be"
            in admin.post("/cascade/target/", {"target_accuracy": bad}, follow=True).content.decode()
        )
    assert client_as("moderator").post("/cascade/target/", {"target_accuracy": "0.9"}).status_code == 403

    # Reviewed traffic: stage 1 was sure and right on three items, sure and wrong on one.
    settings.CASCADE_MIN_REVIEWED = 4
    policy_version = PolicyVersion.objects.get(is_active=True)
    for p, label in ((0.97, DEAL), (0.02, SAFE), (0.9, DEAL), (0.95, SAFE)):
        decision = DecisionFactory(policy_version=policy_version, cascade_p_violative=p, cascade_stage=1)
        ItemLabel.objects.create(video=decision.video, label=label, source=ItemLabel.Source.REVIEW)
    curves = admin.get("/cascade/?part=curves", headers={"HX-Request": "true"}).content.decode()
    assert curves.lstrip().startswith('<section class="panel" id="cascade-curves"')
    assert "From the 4 latest reviewed items" in curves
    model = cascade_target_set(target_accuracy=0.9)
    # most confident first: 0.98 right, 0.97 right, 0.95 wrong, 0.9 right: the first two reach 90%
    assert model.escalate_threshold == pytest.approx(entropy_for_confidence(0.97))


def test_a_label_value_queue_serves_uncertain_and_contradicted_items_first(policy_version, make_user):
    queue = ReviewQueue.objects.create(name="Learn", slug="learn", order_by_label_value=True, sla_seconds=10**6)
    sure = DecisionFactory(policy_version=policy_version, cascade_uncertainty=0.1, is_violation=False)
    unsure = DecisionFactory(policy_version=policy_version, cascade_uncertainty=0.8, is_violation=False)
    reported = DecisionFactory(policy_version=policy_version, cascade_uncertainty=0.1, is_violation=False)
    FeedbackAggregate.objects.create(video=reported.video, reports=3)
    reported.video.refresh_from_db()
    for decision in (sure, unsure, reported):
        review_tasks_create_for_decision(decision=decision)
    reviewer = make_user("moderator")

    order = []
    for _ in range(3):
        task = review_claim_next(user=reviewer, queue=queue)
        order.append(task.decision_id)
        task.status = task.Status.DONE
        task.save(update_fields=["status"])

    # 0.6·0.8 = 0.48 beats 0.6·0.1 + 0.3 (users reported what the model let through) = 0.36 beats 0.06
    assert order == [unsure.pk, reported.pk, sure.pk]
    assert [t.priority for t in queue.tasks.order_by("-priority")] == [48, 36, 6]


def test_beat_retrains_stage_one_once_enough_new_labels_arrived(trained, settings):
    settings.CASCADE_RETRAIN_AFTER_LABELS = 2
    assert cascade_retrain_if_due() is None  # nothing new since it was trained
    for title, label in (("私聊加我微信买", DEAL), ("红烧茄子做法 #美食", SAFE)):
        ItemLabel.objects.create(video=VideoFactory(title=title), label=label, source=ItemLabel.Source.REVIEW)

    retrained = cascade_retrain_if_due()

    assert retrained is not None and retrained.pk == trained.pk and retrained.trained_on == 26
    assert retrained.target_accuracy == pytest.approx(0.9)  # keeps its routing
    assert cascade_retrain_if_due() is None


def test_the_learning_curve_ratio_compares_label_counts_at_the_arrival_orders_final_accuracy() -> None:
    curves = LearningCurves(
        labels=[40, 60, 80, 100],
        curves={"arrival": [[0.6, 0.65, 0.7, 0.74]] * 3, "uncertainty": [[0.6, 0.7, 0.75, 0.76]] * 3},
        n_locked=100,
    )
    summary = curves.summary()
    assert list(summary)[0] == "ratio"
    assert (summary["labels_arrival"], summary["labels_uncertainty"]) == (100, 80)
    assert summary["ratio"] == pytest.approx(0.8)
    never = LearningCurves(labels=[40, 60], curves={"arrival": [[0.6, 0.7]], "uncertainty": [[0.6, 0.65]]}, n_locked=9)
    assert never.summary()["ratio"] == pytest.approx(80 / 60, abs=1e-4)  # counted as one retrain past the pool


def test_the_simulation_retrains_on_both_orders_from_the_same_first_labels() -> None:
    rng = random.Random(0)
    items, violative = [], []
    for i in range(60):
        bad = i % 2 == 0
        noise = "".join(rng.choice("山水风云花鸟") for _ in range(4))
        items.append(TextItem(title=("加微信私聊" if bad else "家常菜做法") + noise))
        violative.append(bad)

    curves = simulate_learning_curves(
        items, violative, start=10, step=10, seeds=[0], config=Stage1Config(stack_cs=(1.0,), stack_folds=2)
    )

    assert curves.labels == [10, 20, 30, 40, 45]
    assert curves.n_locked == 15
    for order in ("arrival", "uncertainty"):
        [curve] = curves.curves[order]
        assert len(curve) == 5 and curve[-1] == pytest.approx(1.0)  # an easy task, all labels known
    assert curves.curves["arrival"][0][0] == curves.curves["uncertainty"][0][0]  # same first 10 labels


def test_the_mixed_and_diverse_orders_take_full_batches_from_the_same_first_labels() -> None:
    rng = random.Random(1)
    items, violative = [], []
    for i in range(40):
        bad = i % 2 == 0
        noise = "".join(rng.choice("山水风云花鸟") for _ in range(4))
        items.append(TextItem(title=("加微信私聊" if bad else "家常菜做法") + noise))
        violative.append(bad)
    orders = ("arrival", "uncertainty", "uncertainty+arrival", "uncertainty+diversity")

    curves = simulate_learning_curves(
        items,
        violative,
        start=10,
        step=10,
        seeds=[0],
        config=Stage1Config(stack_cs=(1.0,), stack_folds=2),
        orders=orders,
    )

    assert {curves.curves[order][0][0] for order in orders} == {curves.curves["arrival"][0][0]}
    assert all(curves.curves[order][0][-1] == pytest.approx(1.0) for order in orders)  # all labels known
    summary = curves.summary()
    assert set(summary["variants"]) == {"uncertainty+arrival", "uncertainty+diversity"}
    assert summary["variants"]["uncertainty+arrival"]["ratio"] == curves.ratio("uncertainty+arrival")
    with pytest.raises(ValueError, match="orders"):
        simulate_learning_curves(items, violative, orders=("arrival", "random"))


def test_the_mixed_order_serves_half_uncertain_half_earliest_and_the_diverse_one_spreads_its_batch() -> None:
    from moderation.inference.stage1.learning import _next_batch
    from moderation.inference.stage1.model import binary_head_fit

    train = [TextItem(title=t) for t in ["加微信私聊", "加微信私聊便宜", "家常菜做法", "家常菜做法好吃"] * 3]
    head = binary_head_fit(train, np.array([1, 1, 0, 0] * 3), Stage1Config(stack_cs=(1.0,), stack_folds=2))
    # Confident items first in arrival order, then borderline ones (both cues or neither), duplicated.
    remaining = [TextItem(title="加微信私聊便宜"), TextItem(title="家常菜做法好吃")]
    remaining += [TextItem(title="加微信私聊家常菜做法"), TextItem(title="山水花鸟")] * 4

    mixed = _next_batch("uncertainty+arrival", head, remaining, 4, seed=0)
    diverse = _next_batch("uncertainty+diversity", head, remaining, 2, seed=0)

    assert len(mixed) == 4 and {0, 1} <= mixed  # the two earliest arrivals, however confident
    assert {remaining[k].title for k in diverse} == {"加微信私聊家常菜做法", "山水花鸟"}  # one of each kind
