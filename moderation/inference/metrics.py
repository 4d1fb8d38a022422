"""Moderation metrics exactly as the KuaiMod benchmark reports them; every evaluation reuses these.

Conventions (KuaiMod's evaluation scripts): an item is violative when its tag is anything but the
policy's safe label (``正向``); precision with no positive predictions is 0.0 (sklearn's
``zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else 0.0


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default): how far an accuracy measured on n
    items can be from the true one. (0, 1) when there are no items."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def tag_to_major(taxonomy: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {tag["key"]: major["key"] for major in taxonomy for tag in major.get("tags", [])}


def kuaimod_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], taxonomy: Sequence[dict[str, Any]], safe_label: str = "正向"
) -> dict[str, Any]:
    """Binary, per-class, per-major-category and 16-way metrics of predicted tags against true tags.

    ``major_recall[M]``: of the items whose true tag is in major category M, the share predicted
    violative at all (the paper's per-category detection recall). ``major_recall_exact[M]``: the
    share predicted with a tag of the same major category.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    true = np.asarray(list(y_true), dtype=object)
    pred = np.asarray(list(y_pred), dtype=object)
    true_v = true != safe_label
    pred_v = pred != safe_label
    n = len(true)
    majors = tag_to_major(taxonomy)

    tp = int(np.sum(true_v & pred_v))
    tn = int(np.sum(~true_v & ~pred_v))
    major_recall: dict[str, float | None] = {}
    major_recall_exact: dict[str, float | None] = {}
    major_support: dict[str, int] = {}
    for major in taxonomy:
        in_major = np.array([majors.get(t) == major["key"] for t in true], dtype=bool)
        support = int(in_major.sum())
        major_support[major["key"]] = support
        # None, not 0: a category absent from the test set has no recall to report.
        major_recall[major["key"]] = _ratio(int(np.sum(in_major & pred_v)), support) if support else None
        same = np.array([majors.get(p) == major["key"] for p in pred], dtype=bool)
        major_recall_exact[major["key"]] = _ratio(int(np.sum(in_major & same)), support) if support else None
    return {
        "n": n,
        "n_violative": int(true_v.sum()),
        "binary_accuracy": _ratio(tp + tn, n),
        "binary_accuracy_ci95": [round(v, 4) for v in wilson_interval(tp + tn, n)],
        "violative_precision": _ratio(tp, int(pred_v.sum())),
        "violative_recall": _ratio(tp, int(true_v.sum())),
        "nonviolative_precision": _ratio(tn, int((~pred_v).sum())),
        "nonviolative_recall": _ratio(tn, int((~true_v).sum())),
        "multiclass_accuracy": _ratio(int(np.sum(true == pred)), n),
        "major_recall": major_recall,
        "major_recall_exact": major_recall_exact,
        "major_support": major_support,
    }


def cascade_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], escalated: Sequence[bool] | np.ndarray, safe_label: str = "正向"
) -> dict[str, Any]:
    """How the cascade split the items: auto-decided share, its binary accuracy, escalated share."""
    true_v = np.asarray([t != safe_label for t in y_true], dtype=bool)
    pred_v = np.asarray([p != safe_label for p in y_pred], dtype=bool)
    esc = np.asarray(list(escalated), dtype=bool)
    n = len(esc)
    auto = ~esc
    n_auto = int(auto.sum())
    return {
        "cascade_auto_share": _ratio(n_auto, n),
        "cascade_escalated_share": _ratio(int(esc.sum()), n),
        # None when nothing was auto-decided: there is no accuracy to speak of.
        "cascade_auto_binary_accuracy": _ratio(int(np.sum((true_v == pred_v) & auto)), n_auto) if n_auto else None,
    }


def calibration_error(
    p_violative: Sequence[float] | np.ndarray, violative: Sequence[bool] | np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error of P(violative): the item-weighted mean gap between predicted and
    observed violation rates over equal-width probability bins (0 = perfectly calibrated)."""
    p = np.asarray(p_violative, dtype=float)
    y = np.asarray(violative, dtype=float)
    if len(p) == 0:
        return 0.0
    index = np.minimum((p * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            gap += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(gap / len(p))


def reliability_table(
    p_violative: Sequence[float] | np.ndarray, violative: Sequence[bool] | np.ndarray, bins: int = 10
) -> list[dict[str, Any]]:
    """The reliability diagram behind ``calibration_error``: per equal-width bin of P(violative) (empty
    bins left out), the items in it, their mean predicted and their observed violation rate."""
    p = np.asarray(p_violative, dtype=float)
    y = np.asarray(violative, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "n": int(mask.sum()),
                    "predicted": round(float(p[mask].mean()), 4),
                    "observed": round(float(y[mask].mean()), 4),
                }
            )
    return rows
