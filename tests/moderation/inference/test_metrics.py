from __future__ import annotations

import pytest

from moderation.inference.metrics import cascade_metrics, kuaimod_metrics, wilson_interval
from moderation.policies.seed import kuaimod_taxonomy

SAFE = "正向"


def test_kuaimod_metrics_on_a_hand_computed_example() -> None:
    # Truth: 2 safe, 1 porn (content-quality major), 1 private deal (commercial major).
    y_true = [SAFE, SAFE, "色情低俗", "引导私下交易"]
    # Predictions: one false alarm on a safe item (tagged as a commercial violation), porn caught with the
    # right tag, the private deal caught with a wrong tag from another major.
    y_pred = [SAFE, "炒作卖货", "色情低俗", "违法犯罪"]

    m = kuaimod_metrics(y_true, y_pred, kuaimod_taxonomy())

    assert m["n"] == 4
    assert m["binary_accuracy"] == pytest.approx(3 / 4)  # only item 2 is wrong as violative/safe
    assert m["violative_precision"] == pytest.approx(2 / 3)  # 3 flagged, 2 truly violative
    assert m["violative_recall"] == pytest.approx(2 / 2)
    assert m["nonviolative_precision"] == pytest.approx(1 / 1)
    assert m["nonviolative_recall"] == pytest.approx(1 / 2)
    assert m["multiclass_accuracy"] == pytest.approx(2 / 4)  # items 1 and 3 exactly right
    assert m["major_recall"]["内容质量与伦理"] == pytest.approx(1.0)
    assert m["major_recall"]["商业行为与商品宣传"] == pytest.approx(1.0)  # detected, though mis-tagged
    assert m["major_recall_exact"]["商业行为与商品宣传"] == pytest.approx(0.0)
    assert m["major_recall"]["法律与社会安全"] is None  # no such items in the truth
    assert m["major_support"] == {
        "法律与社会安全": 0,
        "内容质量与伦理": 1,
        "商业行为与商品宣传": 1,
        "知识产权与标识合规": 0,
    }


def test_precision_is_zero_when_nothing_is_flagged() -> None:
    m = kuaimod_metrics([SAFE, "色情低俗"], [SAFE, SAFE], kuaimod_taxonomy())
    assert m["violative_precision"] == 0.0
    assert m["violative_recall"] == 0.0
    assert m["binary_accuracy"] == pytest.approx(0.5)


def test_cascade_metrics_split_auto_and_escalated() -> None:
    y_true = [SAFE, SAFE, "色情低俗", "色情低俗"]
    y_pred = [SAFE, "色情低俗", "色情低俗", SAFE]
    escalated = [False, False, False, True]
    m = cascade_metrics(y_true, y_pred, escalated)
    assert m["cascade_auto_share"] == pytest.approx(0.75)
    assert m["cascade_escalated_share"] == pytest.approx(0.25)
    assert m["cascade_auto_binary_accuracy"] == pytest.approx(2 / 3)
    assert cascade_metrics([SAFE], [SAFE], [True])["cascade_auto_binary_accuracy"] is None


def test_the_wilson_interval_matches_textbook_values() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Newcombe (1998), 8/10
    lo, hi = wilson_interval(314, 401)  # the dev split's 78.3 %: .80 lies inside
    assert lo == pytest.approx(0.7404, abs=1e-3) and hi == pytest.approx(0.8207, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0
    m = kuaimod_metrics([SAFE, SAFE, "色情低俗", "引导私下交易"], [SAFE, SAFE, "色情低俗", SAFE], kuaimod_taxonomy())
    assert m["binary_accuracy_ci95"] == [round(v, 4) for v in wilson_interval(3, 4)]


def test_the_reliability_table_bins_predictions_and_counts_what_was_observed() -> None:
    from moderation.inference.metrics import reliability_table

    rows = reliability_table([0.05, 0.15, 0.12, 0.95, 0.91], [False, True, False, True, True])
    assert [(row["bin"], row["n"]) for row in rows] == [([0.0, 0.1], 1), ([0.1, 0.2], 2), ([0.9, 1.0], 2)]
    assert rows[1]["predicted"] == pytest.approx(0.135) and rows[1]["observed"] == pytest.approx(0.5)
