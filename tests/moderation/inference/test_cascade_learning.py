"""The calibrated cascade set by a target accuracy, the risk–coverage curve on the dashboard, the
queue that serves the most valuable labels first, beat retraining, and the learning-curve simulation
(``bench/_stage1_learning.py``: bench code, tested here beside the product rule it shares)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench._stage1_learning import (
    VALUE_ORDERS,
    VARIANTS,
    LearningCurves,
    class_balanced_term,
    committee_p,
    committee_term,
    density_term,
    label_value_order,
    next_batch,
    simulate_learning_curves,
)
from moderation.feedback.models import FeedbackAggregate
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.selectors import cascade_model_active
from moderation.inference.services import cascade_retrain_if_due, cascade_target_set, cascade_train
from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.label_value import label_value, uncertainty_term
from moderation.inference.stage1.model import Stage1Config
from moderation.inference.stage1.routing import cut_for_target, entropy_for_confidence
from moderation.inference.tasks import train_cascade
from moderation.models import ItemLabel, PolicyVersion, ReviewQueue
from moderation.review.services import review_claim_next, review_label_value, review_tasks_create_for_decision
from tests.factories import DecisionFactory, PolicyVersionFactory, VideoFactory
from tests.moderation.inference.kuaimod_samples import write_split
from tests.moderation.inference.trained_stage1 import stage1_for_the_test, stage1_trained_once

DEAL, SAFE = "引导私下交易", "正向"


@pytest.fixture
def trained(db, tmp_path, settings):  # type: ignore[no-untyped-def]
    """A stage 1 of this test's own (beat retraining replaces the model under its name; the class below shares one)."""
    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    PolicyVersionFactory()
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    return cascade_train(name="stage1", target_accuracy=0.9)


class TestOnOneTrainedStage1:
    """The tests that read or change one stage 1 routed by a 90% target: trained once for the class
    (``trained_stage1.py``), each test's changes undone when it ends. Beat retraining replaces the model's file in
    place: it trains its own (``trained`` above)."""

    @pytest.fixture(scope="class")
    def trained_of_the_class(self, tmp_path_factory, django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
        with stage1_trained_once(tmp_path_factory, django_db_blocker, target_accuracy=0.9) as model:
            yield model

    @pytest.fixture
    def trained(self, request, db, trained_of_the_class):  # type: ignore[no-untyped-def]
        return stage1_for_the_test(request, trained_of_the_class)

    def test_the_admin_picks_a_target_on_the_curve_and_the_curve_follows_the_reviews(
        self, trained, client_as, settings
    ):
        admin = client_as("admin")
        page = admin.get("/cascade/").content.decode()
        assert 'id="risk-coverage"' in page and "held-out (inner-fold) predictions of its 24 training items" in page
        assert page.count('id="cascade-curves"') == 1  # the panel is drawn once (a merge had left two copies)
        assert "Auto-decide where expected accuracy ≥ 90%: stage 1 auto-decides" in page

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
        # The refusal names what was typed (1.5 was reported back as "got 0.015", read as a percentage).
        refused = admin.post("/cascade/target/", {"target_accuracy": "1.5"}, follow=True).content.decode()
        assert "“1.5” is not" in refused and "0.015" not in refused
        trained.refresh_from_db()
        assert trained.target_accuracy == pytest.approx(0.8)  # refusals changed nothing
        assert client_as("moderator").post("/cascade/target/", {"target_accuracy": "0.9"}).status_code == 403

        # Reviewed traffic: stage 1 was sure and right on three items, sure and wrong on one.
        settings.CASCADE_MIN_REVIEWED = 4
        policy_version = PolicyVersion.objects.get(is_active=True)
        for p, label in ((0.97, DEAL), (0.02, SAFE), (0.9, DEAL), (0.95, SAFE)):
            decision = DecisionFactory(policy_version=policy_version, cascade_p_violative=p, cascade_stage=1)
            ItemLabel.objects.create(video=decision.video, label=label, source=ItemLabel.Source.REVIEW)
        curves = admin.get("/cascade/?part=curves", headers={"HX-Request": "true"}).content.decode()
        assert curves.lstrip().startswith('<div id="cascade-curves"')
        assert 'id="target-form"' not in curves  # a target being typed is not swapped away by the poll
        assert "From the 4 latest reviewed items" in curves
        model = cascade_target_set(target_accuracy=0.9)
        # most confident first: 0.98 right, 0.97 right, 0.95 wrong, 0.9 right: the first two reach 90%
        assert model.escalate_threshold == pytest.approx(entropy_for_confidence(0.97))

    def test_routing_by_a_target_no_cut_reaches_says_every_item_goes_on_to_the_vlm(self, trained, client_as):
        """Walked: a target the calibrated stage 1 never reaches was set with a plain success message, while it then
        auto-decides nothing. The message says the consequence, from the numbers the line under the curve uses."""
        trained.metrics = {
            **trained.metrics,
            "held_out_curve": [
                {"cut": 0.99, "coverage": 0.25, "accuracy": 0.92, "n": 6},
                {"cut": 0.8, "coverage": 0.5, "accuracy": 0.9, "n": 12},
                {"cut": 0.5, "coverage": 1.0, "accuracy": 0.7, "n": 24},
            ],
        }
        trained.save(update_fields=["metrics"])
        admin = client_as("admin")

        page = admin.post("/cascade/target/", {"target_accuracy": "95"}, follow=True).content.decode()
        consequence = "no item is auto-decided: every item goes on to the serving VLM (stage 2)"
        assert f"(escalation threshold 0.00): at 95%, {consequence}." in page
        assert f"Auto-decide where expected accuracy ≥ 95%: {consequence}." in page  # the line under the curve agrees

        page = admin.post("/cascade/target/", {"target_accuracy": "0.9"}, follow=True).content.decode()
        consequence = "stage 1 auto-decides 50% of items; the rest go on to the serving VLM (stage 2)"
        assert f": at 90%, {consequence}." in page and f"≥ 90%: {consequence}." in page

    def test_the_target_box_shows_the_target_as_the_curve_does_and_keeps_a_refused_typed_value(
        self, trained, client_as
    ):
        admin = client_as("admin")
        # A target stored as a raw float came back into the box as "0.50000000001" beside a curve saying 50%.
        cascade_target_set(target_accuracy=0.50000000001)
        page = admin.get("/cascade/").content.decode()
        target_form = page.split('id="target-form"')[1].split("</form>")[0]
        assert 'value="50%"' in target_form and "0.5000000" not in page
        assert "target 50%" in page  # the curve's label says the same

        # What was typed is kept to the tenth the dashboard shows, so the box and the routing agree.
        admin.post("/cascade/target/", {"target_accuracy": "50.000000001"})
        trained.refresh_from_db()
        assert trained.target_accuracy == 0.5

        # A refused target: the box keeps what the admin typed, beside the reason; the stored one is unchanged.
        refused = admin.post("/cascade/target/", {"target_accuracy": "0.3"}, follow=True)
        assert refused.redirect_chain == [("/cascade/", 302)]  # a reload does not send the form again
        html = refused.content.decode()
        target_form = html.split('id="target-form"')[1].split("</form>")[0]
        assert 'value="0.3"' in target_form and 'aria-invalid="true"' in target_form
        assert "autofocus" in target_form  # the page opens at the refused box, not at its top
        assert "The target accuracy must be between 0.5 and 1 (or 50 % to 100 %); “0.3” is not." in target_form
        assert "still 50%" in target_form
        trained.refresh_from_db()
        assert trained.target_accuracy == 0.5

        # The threshold box likewise.
        html = admin.post("/cascade/threshold/", {"threshold": "7"}, follow=True).content.decode()
        threshold_form = html.split('id="threshold-form"')[1].split("</form>")[0]
        assert 'value="7"' in threshold_form and "“7” is not" in threshold_form

    def test_the_target_and_the_threshold_read_a_decimal_comma(self, trained, client_as):
        """ "0,92" in the target box (or "0,35" in the threshold box) was refused as not a number: the boxes read a
        number as the tag set's thresholds do (workbench.numbers), a comma as the decimal separator when unambiguous."""
        admin = client_as("admin")

        target = admin.post("/cascade/target/", {"target_accuracy": "0,92"}, follow=True)
        assert "expected accuracy is at least 92%" in target.content.decode()
        trained.refresh_from_db()
        assert trained.target_accuracy == pytest.approx(0.92)
        percent = admin.post("/cascade/target/", {"target_accuracy": "92,5 %"}, follow=True)
        assert "at least 92.5%" in percent.content.decode()
        threshold = admin.post("/cascade/threshold/", {"threshold": "0,35"}, follow=True)
        assert "escalates items above uncertainty 0.35" in threshold.content.decode()
        trained.refresh_from_db()
        assert trained.escalate_threshold == pytest.approx(0.35)
        guessed = admin.post("/cascade/threshold/", {"threshold": "0,3,5"}, follow=True)
        assert (
            guessed.redirect_chain == [("/cascade/", 302)]
            and "must be a number between 0 and 1" in guessed.content.decode()
        )

    def test_the_risk_coverage_axis_reads_in_percent_like_its_target(self, trained, client_as):
        """Walked: the curve's accuracy axis read "1.0" and "0.5" beside a dashed "target 90%" and a table in percent,
        two scales for one quantity on one chart."""
        page = client_as("admin").get("/cascade/").content.decode()
        chart = page[
            page.index('<svg id="risk-coverage"') : page.index("</svg>", page.index('<svg id="risk-coverage"'))
        ]
        assert ">100%</text>" in chart and ">50%</text>" in chart and "target 90%" in chart
        assert ">1.0</text>" not in chart and ">0.5</text>" not in chart


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

    training = cascade_retrain_if_due()  # queued through the button's service, trained by the task

    assert training is not None and training.trigger == "beat" and training.status == "queued"
    assert cascade_retrain_if_due() == training  # a tick while it waits asks for no second one
    assert train_cascade(training.pk) == "done"
    retrained = cascade_model_active()
    assert retrained is not None and retrained.pk == trained.pk and retrained.trained_on == 26
    assert retrained.target_accuracy == pytest.approx(0.9)  # keeps its routing
    assert cascade_retrain_if_due() is None


def test_the_learning_curve_ratio_compares_label_counts_at_the_arrival_orders_final_accuracy() -> None:
    # Two seeds × two locked folds; seed 0 tunes, seed 1 is reported.
    curves = LearningCurves(
        labels=[40, 60, 80, 100],
        curves={
            "arrival": [[0.6, 0.65, 0.7, 0.74]] * 4,
            "uncertainty": [[0.6, 0.7, 0.75, 0.76]] * 2 + [[0.6, 0.62, 0.76, 0.76]] * 2,
            "density": [[0.6, 0.74, 0.76, 0.76]] * 2 + [[0.6, 0.6, 0.6, 0.6]] * 2,
        },
        n_locked=[100] * 4,
        repetitions=[(0, 0), (0, 1), (1, 0), (1, 1)],
    )
    summary = curves.summary()
    assert list(summary)[0] == "ratio"
    # density wins on the tuning seed (reaches .74 at 60 labels), so it is the queue's order; its
    # reported ratio is the held-out seed's, where it never reaches arrival's .74: one retrain past.
    assert summary["queue_order"] == "density"
    assert summary["orders"]["density"]["ratio_tuning"] == pytest.approx(0.6)
    assert summary["ratio"] == pytest.approx(120 / 100)
    assert summary["orders"]["uncertainty"]["ratio_held_out"] == pytest.approx(0.8)
    assert (summary["labels_arrival"], summary["orders"]["uncertainty"]["labels_to_reach"]) == (100, 80)
    assert summary["orders"]["uncertainty"]["mean_accuracy_gap_vs_arrival"]["mean"] == pytest.approx(
        np.mean([0.6, 0.62, 0.76, 0.76]) - np.mean([0.6, 0.65, 0.7, 0.74]), abs=1e-4
    )
    never = LearningCurves(
        labels=[40, 60], curves={"arrival": [[0.6, 0.7]], "uncertainty": [[0.6, 0.65]]}, n_locked=[9]
    )
    assert never.ratio("uncertainty") == pytest.approx(80 / 60, abs=1e-4)  # counted as one retrain past the pool


def test_curves_are_averaged_over_repetitions_and_the_ratio_spread_is_a_bootstrap_over_them() -> None:
    arrival = [[0.6, 0.7, 0.8]] * 10
    # Half the repetitions are at .9 by 60 labels, half only at .7: the mean curve is at .8 by 60.
    uncertainty = [[0.6, 0.9, 0.9]] * 5 + [[0.6, 0.7, 0.8]] * 5
    curves = LearningCurves(
        labels=[40, 60, 80], curves={"arrival": arrival, "uncertainty": uncertainty}, n_locked=[10] * 10
    )
    assert curves.mean("uncertainty") == pytest.approx([0.6, 0.8, 0.85])
    assert curves.ratio("uncertainty") == pytest.approx(60 / 80, abs=1e-4)
    assert curves.ratio("uncertainty", [5, 6]) == pytest.approx(1.0)  # the slow repetitions alone
    spread = curves.ratio_spread("uncertainty")
    # A resample with fewer than half fast repetitions needs 80 labels: the interval spans both.
    assert spread["ci95"] == pytest.approx([0.75, 1.0])
    assert spread["share_at_most_0.6"] == 0.0


def test_the_simulation_rotates_the_locked_fold_and_starts_every_order_from_the_same_labels() -> None:
    rng = random.Random(0)
    items, violative = [], []
    for i in range(40):
        bad = i % 2 == 0
        noise = "".join(rng.choice("山水风云花鸟") for _ in range(4))
        items.append(TextItem(title=("加微信私聊" if bad else "家常菜做法") + noise))
        violative.append(bad)

    curves = simulate_learning_curves(
        items, violative, start=12, step=9, seeds=[0], config=Stage1Config(stack_cs=(1.0,), stack_folds=2)
    )

    assert curves.labels == [12, 21, 30]
    assert curves.repetitions == [(0, 0), (0, 1), (0, 2), (0, 3)]  # each quarter locked once
    assert curves.n_locked == [10, 10, 10, 10]
    for order in ("arrival", "uncertainty"):
        assert len(curves.curves[order]) == 4
        for curve in curves.curves[order]:
            assert len(curve) == 3 and curve[-1] == pytest.approx(1.0)  # an easy task, all labels known
    for rep in range(4):
        assert curves.curves["arrival"][rep][0] == curves.curves["uncertainty"][rep][0]  # same first 12 labels


def test_every_order_takes_full_batches_from_the_same_first_labels() -> None:
    rng = random.Random(1)
    items, violative = [], []
    for i in range(40):
        bad = i % 2 == 0
        noise = "".join(rng.choice("山水风云花鸟") for _ in range(4))
        items.append(TextItem(title=("加微信私聊" if bad else "家常菜做法") + noise))
        violative.append(bad)
    orders = ("arrival", "uncertainty", *VARIANTS)

    curves = simulate_learning_curves(
        items,
        violative,
        start=10,
        step=10,
        seeds=[0],
        locked_folds=2,
        config=Stage1Config(stack_cs=(1.0,), stack_folds=2),
        orders=orders,
    )

    assert {curves.curves[order][0][0] for order in orders} == {curves.curves["arrival"][0][0]}
    assert all(curves.curves[order][0][-1] == pytest.approx(1.0) for order in orders)  # all labels known
    summary = curves.summary()
    assert set(summary["orders"]) == set(orders) - {"arrival"}
    assert summary["queue_order"] in VALUE_ORDERS
    with pytest.raises(ValueError, match="orders"):
        simulate_learning_curves(items, violative, orders=("arrival", "random"))


def _borderline_head():  # type: ignore[no-untyped-def]
    from moderation.inference.stage1.model import binary_head_fit

    train = [TextItem(title=t) for t in ["加微信私聊", "加微信私聊便宜", "家常菜做法", "家常菜做法好吃"] * 3]
    return train, binary_head_fit(train, np.array([1, 1, 0, 0] * 3), Stage1Config(stack_cs=(1.0,), stack_folds=2))


def test_the_simulated_queue_ranks_by_the_products_label_value_rule(policy_version) -> None:
    """The bench's uncertainty order and the review queue's priority are the same function of P(violative)."""
    train, head = _borderline_head()
    remaining = [
        TextItem(title="加微信私聊便宜"),
        TextItem(title="家常菜做法好吃"),
        TextItem(title="加微信私聊家常菜做法"),
    ]
    remaining += [TextItem(title="山水花鸟"), TextItem(title="家常菜")]
    p = head.predict_proba(remaining)[:, 1]

    served = next_batch(
        "uncertainty", head, remaining, 2, seed=0, labelled_items=train, labelled_y=np.array([1, 1, 0, 0] * 3)
    )

    decisions = [
        DecisionFactory(policy_version=policy_version, cascade_p_violative=float(v), is_violation=bool(v > 0.5))
        for v in p
    ]
    far = 10**9  # no SLA pressure, no feedback: the queue's value is the uncertainty term alone
    values = [review_label_value(decision=d, sla_seconds=far, now=d.video.created_at) for d in decisions]
    assert values == pytest.approx([label_value(uncertainty=u) for u in uncertainty_term(p)])
    assert served == set(np.argsort(values)[::-1][:2].tolist())
    assert served == {2, 3}  # the two items with both cues or neither


def test_the_alternative_label_value_terms() -> None:
    agree, split = np.array([[0.9, 0.2]] * 5), np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    assert committee_term(agree) == pytest.approx([0.0, 0.0], abs=1e-9)
    assert (committee_term(split) > 0.3).all()
    p = np.array([0.6, 0.4])  # equally uncertain, opposite predictions
    few_violative = class_balanced_term(p, violative_share=0.2)
    assert few_violative[0] > few_violative[1]  # the class the labels hold less of counts more
    assert class_balanced_term(p, 0.5) == pytest.approx(uncertainty_term(p))
    assert density_term(np.array([0.5, 0.5]), np.array([0.9, 0.1])).tolist() == pytest.approx([0.9, 0.1])
    assert label_value_order([0.2, 0.9, 0.9, 0.1]).tolist() == [1, 2, 0, 3]  # ties keep arrival order


def test_the_mixed_order_serves_half_uncertain_half_earliest_and_the_diverse_one_spreads_its_batch() -> None:
    train, head = _borderline_head()
    y = np.array([1, 1, 0, 0] * 3)
    # Confident items first in arrival order, then borderline ones (both cues or neither), duplicated.
    remaining = [TextItem(title="加微信私聊便宜"), TextItem(title="家常菜做法好吃")]
    remaining += [TextItem(title="加微信私聊家常菜做法"), TextItem(title="山水花鸟")] * 4

    mixed = next_batch("uncertainty+arrival", head, remaining, 4, seed=0, labelled_items=train, labelled_y=y)
    diverse = next_batch("uncertainty+diversity", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)
    committee = next_batch("committee", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)

    assert len(mixed) == 4 and {0, 1} <= mixed  # the two earliest arrivals, however confident
    assert {remaining[k].title for k in diverse} == {"加微信私聊家常菜做法", "山水花鸟"}  # one of each kind
    members = committee_p(head, train, y, remaining, seed=0)
    assert members.shape == (5, len(remaining))
    assert committee == set(label_value_order(committee_term(members))[:2].tolist())


def test_the_dashboard_draws_the_benchs_learning_curve_with_its_spread(db, client_as, settings, tmp_path) -> None:
    import json

    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    # Walked with a freshly trained stage 1: "Run bench/learning_curve.py to draw it" read as if training here would.
    empty = client_as("admin").get("/cascade/").content.decode()
    assert 'id="learning-empty"' in empty and "Training stage 1 here does not draw it" in empty
    assert "<code>bench/learning_curve.py</code>, run on the server" in empty
    curves = LearningCurves(
        labels=[40, 60, 80],
        curves={"arrival": [[0.6, 0.7, 0.8]] * 4, "uncertainty": [[0.6, 0.8, 0.8]] * 2 + [[0.6, 0.7, 0.8]] * 2},
        n_locked=[10] * 4,
        repetitions=[(0, 0), (0, 1), (1, 0), (1, 1)],
    )
    result = {**curves.summary(), "seeds": 2, "locked_folds": 2, "data": "dev.jsonl"}
    (tmp_path / "models" / "cascade").mkdir(parents=True)
    (tmp_path / "models" / "cascade" / "learning_curve.json").write_text(json.dumps(result), encoding="utf-8")

    page = client_as("admin").get("/cascade/").content.decode()

    assert 'id="learning-curve"' in page
    summary = page[page.index('id="learning-summary"') :].split("</p>")[0]
    assert "the queue's order (uncertainty)" in summary and "mean of 2 repetitions" in summary
    # Seed 0 (tuning) learned faster; the held-out seed 1 did not: the page quotes seed 1.
    assert "the queue's order\n    with 80 (ratio 1.0, bootstrap 95% 1.0–1.0; goal ≤ 0.6)" in summary
    # In percent, as the axes beside it (it read "its final 0.800" under "80%").
    assert "Arrival reaches its final 80.0% with 80 labels" in " ".join(summary.split())


def test_a_run_split_over_processes_is_rebuilt_from_its_progress_lines() -> None:
    from bench._stage1_learning import curves_from_progress

    lines = [
        "curve (0, 0, 'arrival'): 0.600 0.700",
        "curve (0, 0, 'uncertainty'): 0.600 0.800",
        "noise between the lines",
        "curve (1, 0, 'uncertainty'): 0.500 0.700",  # seed 1's arrival curve never finished: dropped
        "curve (0, 1, 'uncertainty'): 0.600 0.600",
        "curve (0, 1, 'arrival'): 0.600 0.650",
    ]
    curves = curves_from_progress(lines, labels=[40, 60])
    assert curves.repetitions == [(0, 0), (0, 1)]
    assert curves.curves == {"arrival": [[0.6, 0.7], [0.6, 0.65]], "uncertainty": [[0.6, 0.8], [0.6, 0.6]]}
    with pytest.raises(ValueError, match="every order"):
        curves_from_progress(lines[3:4], labels=[40, 60])


def test_the_clustered_batch_covers_the_pools_kinds_and_the_error_bound_reads_the_labels() -> None:
    from bench._stage1_learning import _errors_first

    train, head = _borderline_head()
    y = np.array([1, 1, 0, 0] * 3)
    # Four kinds of item, the two borderline kinds (both cues, neither) repeated: plain uncertainty takes
    # two copies of one borderline kind; the clustered batch one item of each kind it clusters apart.
    remaining = [TextItem(title="加微信私聊家常菜做法")] * 3 + [TextItem(title="山水花鸟")] * 3
    remaining += [TextItem(title="加微信私聊便宜"), TextItem(title="家常菜做法好吃")]

    clustered = next_batch("clustered", head, remaining, 4, seed=0, labelled_items=train, labelled_y=y)
    uncertain = next_batch("uncertainty", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)

    assert {remaining[k].title for k in clustered} == {t.title for t in remaining}
    assert len({remaining[k].title for k in uncertain}) == 1  # the same borderline kind twice
    # The bound serves the items the model gets wrong first (here only the two confident ones, labelled the
    # other way), before any uncertain item it gets right.
    predicted = head.predict_proba(remaining)[:, 1] > 0.5
    wrong_labels = np.where(np.arange(8) >= 6, ~predicted, predicted).astype(int)
    assert _errors_first(head, remaining, wrong_labels, 2) == {6, 7}


def test_a_pre_registered_queue_order_is_reported_as_is_and_the_orders_share_the_last_point() -> None:
    curves = LearningCurves(
        labels=[40, 60, 80],
        curves={
            "arrival": [[0.6, 0.7, 0.8]] * 2,
            "uncertainty": [[0.6, 0.8, 0.8]] * 2,
            "density": [[0.6, 0.7, 0.8]] * 2,
        },
        n_locked=[10] * 2,
        repetitions=[(0, 0), (1, 0)],
        queue_order="density",
    )
    summary = curves.summary()
    assert summary["queue_order"] == "density" and summary["queue_order_pre_registered"] is True
    assert summary["ratio"] == pytest.approx(1.0)  # not the better uncertainty: nothing is chosen after the run
    curves.queue_order = "committee"
    with pytest.raises(ValueError, match="not simulated"):
        curves.summary()


def test_orders_that_end_on_the_same_labels_end_on_the_same_model(monkeypatch) -> None:
    """The last point is the whole pool for every order, and every model is fitted on its labels in
    dataset order (the head's inner folds are drawn by position): the same labels, the same model."""
    from bench import _stage1_learning as learning

    rng = random.Random(3)
    items = [
        TextItem(title=f"{i:03d}" + "".join(rng.choice("山水风云花鸟加微信私聊") for _ in range(6))) for i in range(30)
    ]
    violative = [rng.random() < 0.5 for _ in items]
    fitted: list[list[str]] = []
    real_fit = learning.binary_head_fit

    def recording_fit(labelled_items, y, config, random_state=0):  # type: ignore[no-untyped-def]
        fitted.append([item.title for item in labelled_items])
        return real_fit(labelled_items, y, config, random_state)

    monkeypatch.setattr(learning, "binary_head_fit", recording_fit)
    curves = simulate_learning_curves(
        items,
        violative,
        start=8,
        step=4,
        seeds=[0],
        locked_folds=2,
        config=Stage1Config(stack_cs=(1.0,), stack_folds=2),
        orders=("arrival", "uncertainty"),
    )

    assert all(titles == sorted(titles) for titles in fitted)  # dataset order, whatever order labels came in
    per_curve = len(curves.labels)
    last_fits = [fitted[k + per_curve - 1] for k in range(0, len(fitted), per_curve)]
    assert len(last_fits) == 4 and last_fits[0] == last_fits[1] and last_fits[2] == last_fits[3]  # whole pool
    for rep in range(len(curves.repetitions)):
        assert curves.curves["arrival"][rep][-1] == curves.curves["uncertainty"][rep][-1]


def test_the_learning_curve_has_titled_axes_in_percent_and_a_legend(db, client_as, settings, tmp_path) -> None:
    """Walked at 1440x900: the learning curve's axes read "0.58" and "0.85" with no title beside "40 labels … 280",
    its two lines were told apart only by the colour of two phrases in the sentence under it, and "ratio 0.71"
    was not said to be a share of labels."""
    import json

    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"
    curves = LearningCurves(
        labels=[40, 60, 80],
        curves={"arrival": [[0.6, 0.7, 0.8]] * 4, "uncertainty": [[0.6, 0.8, 0.8]] * 4},
        n_locked=[10] * 4,
        repetitions=[(0, 0), (0, 1), (1, 0), (1, 1)],
    )
    result = {**curves.summary(), "seeds": 2, "locked_folds": 2, "data": "dev.jsonl"}
    (tmp_path / "models" / "cascade").mkdir(parents=True)
    (tmp_path / "models" / "cascade" / "learning_curve.json").write_text(json.dumps(result), encoding="utf-8")

    page = client_as("admin").get("/cascade/").content.decode()

    chart = page[page.index('<svg id="learning-curve"') :].split("</svg>")[0]
    assert ">binary accuracy, locked fold</text>" in chart and ">trusted labels trained on</text>" in chart
    assert ">82%</text>" in chart and ">58%</text>" in chart  # 0.80 and 0.60 with the chart's 0.02 margin
    assert "0.58<" not in chart and "40 labels" not in chart
    legend = page[page.index('id="learning-legend"') :].split("</p>")[0]
    assert "labelled in the queue's order (uncertainty)" in legend and "labelled in arrival order" in legend
    assert 'fill="#1f6feb"' in legend and 'fill="#57606a"' in legend
    assert "The ratio is the labels the queue's order needs to reach arrival's final accuracy" in page


def _unit_rows(rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=float)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_typical_batch_takes_the_most_typical_item_of_the_uncovered_cluster() -> None:
    from bench._stage1_learning import typical_batch

    # Two groups: the first (six) holds the one labelled item; in the second (five) the item at its centre (row 8)
    # is the most typical, an edge item (row 6) the least. Most uncertain or farthest would not pick row 8.
    group_a = [[1, 0, 0], [1, 0.1, 0], [1, -0.1, 0], [1, 0, 0.1], [1, 0, -0.1], [1, 0.2, 0.2]]
    group_b = [[0.3, 1, 0], [-0.1, 1, 0], [0, 1, 0], [0, 1, 0.1], [0, 1, -0.1]]
    vectors = _unit_rows(group_a + group_b)
    labelled = np.arange(11) == 0

    assert typical_batch(vectors, labelled, 1, seed=0) == [8]
    # A second pick goes back to the first group (each now holds one; it is the larger), never to the edge item 5.
    assert typical_batch(vectors, labelled, 2, seed=0)[1] in {1, 2, 3, 4}
    assert sorted(typical_batch(vectors, labelled, 10, seed=0)) == list(range(1, 11))  # the whole pool, once each


def test_the_k_center_batch_covers_the_pool_before_repeating_a_kind() -> None:
    from bench._stage1_learning import k_center_batch

    # Labelled: row 0. Pool: a near-copy of it (1), two copies of a far item (2, 3), another far item (4).
    vectors = _unit_rows([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    labelled = np.arange(5) == 0

    assert k_center_batch(vectors, labelled, 2) == [2, 4]  # ties: the earliest row; never the copy of a pick
    assert k_center_batch(vectors, labelled, 3) == [2, 4, 1]  # (the copy 3 is at distance 0 from 2)


def test_the_bench_serves_the_label_free_orders_at_pool_positions() -> None:
    train, head = _borderline_head()
    y = np.array([1, 1, 0, 0] * 3)
    # New titles in the head's vocabulary (a title with none has an all-zero row, equally far from everything; a
    # labelled title is at distance 0 from its label, covered already).
    remaining = [TextItem(title="加微信")] * 3 + [TextItem(title="家常菜"), TextItem(title="私聊便宜做法")]

    for order in ("typical", "k-center"):
        assert order in VARIANTS
        batch = next_batch(order, head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)
        assert len(batch) == 2 and batch <= set(range(len(remaining)))  # positions in the pool, not in labels + pool
    far = next_batch("k-center", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)
    assert len({remaining[k].title for k in far}) == 2  # never two copies of one item


def test_the_cold_start_order_serves_typical_items_until_its_switch_then_the_most_uncertain() -> None:
    """Round 7's ``typical-then-uncertainty``: TypiClust's batch while fewer than ``COLD_START_LABELS`` items are
    labelled, the queue's uncertainty order from then on."""
    from bench._stage1_learning import COLD_START_LABELS, _columns, typical_batch

    train, head = _borderline_head()
    y = np.array([1, 1, 0, 0] * 3)
    remaining = [TextItem(title="加微信私聊便宜"), TextItem(title="家常菜做法好吃")] * 3
    remaining += [TextItem(title="加微信私聊家常菜做法"), TextItem(title="山水花鸟")]

    early = next_batch("typical-then-uncertainty", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)
    x = _columns(head, [*train, *remaining])
    typical = {k - len(train) for k in typical_batch(x, np.arange(x.shape[0]) < len(train), 2, 0)}
    assert early == typical

    many = train * (COLD_START_LABELS // len(train) + 1)
    late = next_batch(
        "typical-then-uncertainty", head, remaining, 2, seed=0, labelled_items=many, labelled_y=np.tile(y, len(many))
    )
    assert late == {6, 7}  # the two borderline items (both cues, neither), as uncertainty serves them
    assert late != early


def test_the_power_batch_draws_in_proportion_to_the_label_value() -> None:
    from bench._stage1_learning import power_batch

    values = np.array([0.6, 0.3, 0.1, 0.0])
    draws = [int(power_batch(values, 1, np.random.default_rng(i))[0]) for i in range(4000)]
    shares = np.bincount(draws, minlength=4) / len(draws)
    assert shares == pytest.approx([0.6, 0.3, 0.1, 0.0], abs=0.03)  # not top-1 (always item 0)
    batch = power_batch(values, 4, np.random.default_rng(0))
    assert sorted(batch.tolist()) == [0, 1, 2, 3] and batch[-1] == 3  # value 0 only once the rest are drawn
    again = power_batch(values, 2, np.random.default_rng(0))
    assert again.tolist() == batch[:2].tolist()  # the same generator, the same draw

    train, head = _borderline_head()
    remaining = [TextItem(title="加微信私聊便宜"), TextItem(title="家常菜做法好吃")] * 3
    remaining += [TextItem(title="加微信私聊家常菜做法"), TextItem(title="山水花鸟")]
    y = np.array([1, 1, 0, 0] * 3)
    served = [
        next_batch("power-uncertainty", head, remaining, 2, seed=s, labelled_items=train, labelled_y=y)
        for s in range(30)
    ]
    assert all(len(batch) == 2 for batch in served)
    assert len({frozenset(batch) for batch in served}) > 1  # a draw, not uncertainty's fixed top 2
    assert served[0] == next_batch("power-uncertainty", head, remaining, 2, seed=0, labelled_items=train, labelled_y=y)


def test_the_ratio_is_also_read_per_seed() -> None:
    """The spread over seeds: each seed's locked folds averaged on their own, beside the pooled ratio."""
    curves = LearningCurves(
        labels=[40, 60, 80],
        curves={
            "arrival": [[0.6, 0.7, 0.8]] * 4,
            "uncertainty": [[0.6, 0.8, 0.8]] * 2 + [[0.6, 0.7, 0.8]] * 2,
        },
        n_locked=[10] * 4,
        repetitions=[(1, 0), (1, 1), (2, 0), (2, 1)],
    )
    assert curves.ratio_per_seed("uncertainty") == {1: pytest.approx(0.75), 2: pytest.approx(1.0)}
    assert curves.summary()["orders"]["uncertainty"]["ratio_per_seed"] == curves.ratio_per_seed("uncertainty")
