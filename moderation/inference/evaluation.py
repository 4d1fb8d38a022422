"""Offline evaluation of the cascade's stage 1 on KuaiMod-format files (no database rows needed).

Three honest modes (see bench/RESULTS.md, "Stage 1"): train on one file and score another; nested
cross-validation (every choice made inside each outer training part, the outer folds reported); and a
locked hold-out slice scored once. Plain cross-validation of one fixed configuration stays available
for comparison; its number is optimistic when that configuration was chosen by looking at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from moderation.errors import ModerationError
from moderation.inference.kuaimod import KuaiModRecord, kuaimod_bundle, taxonomy_labels
from moderation.inference.metrics import calibration_error, cascade_metrics, kuaimod_metrics, reliability_table
from moderation.inference.stage1.inputs import TextItem, stage1_input
from moderation.inference.stage1.model import Stage1Config
from moderation.inference.stage1.routing import check_target, curve_summary, normalised_entropy, risk_coverage
from moderation.inference.stage1.selection import (
    CANDIDATES,
    candidates_with_frames,
    stage1_nested_cv,
    stage1_select_fit,
    stratified_splits,
)


@dataclass
class Stage1Evaluation:
    y_true: list[str]
    y_pred: list[str]
    p_violative: np.ndarray
    escalated: np.ndarray
    metrics: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Routing:
    """How the evaluated cascade routes: a fixed entropy ``threshold``, or a ``target_accuracy`` whose cut
    is chosen on the training part's inner folds."""

    threshold: float | None = None
    target_accuracy: float | None = None

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.target_accuracy is None):
            raise ValueError("give exactly one of threshold and target_accuracy")
        if self.target_accuracy is not None:
            check_target(self.target_accuracy)


def records_as_inputs(records: Sequence[KuaiModRecord]) -> list[TextItem]:
    return [stage1_input(kuaimod_bundle(r)) for r in records]


def _summarise(
    y_true: list[str],
    y_pred: list[str],
    p_violative: np.ndarray,
    thresholds: np.ndarray,
    *,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    routing: Routing,
    thresholds_at: dict[float, np.ndarray] | None = None,
) -> Stage1Evaluation:
    escalated = normalised_entropy(p_violative) > thresholds
    metrics = kuaimod_metrics(y_true, y_pred, taxonomy, safe_label)
    metrics.update(cascade_metrics(y_true, y_pred, escalated, safe_label))
    truth = np.array([t != safe_label for t in y_true])
    metrics["calibration_error"] = calibration_error(p_violative, truth)
    metrics["reliability"] = reliability_table(p_violative, truth)
    curve = risk_coverage(p_violative, (p_violative > 0.5) == truth)
    metrics["risk_coverage"] = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in point.items()} for point in curve_summary(curve)
    ]
    metrics["cascade_at_targets"] = _at_targets(
        y_true, y_pred, p_violative, thresholds_at or {}, curve, safe_label=safe_label
    )
    metrics["escalate_threshold"] = routing.threshold
    metrics["target_accuracy"] = routing.target_accuracy
    if routing.target_accuracy is not None:
        metrics["escalate_thresholds_chosen"] = sorted({round(float(t), 4) for t in thresholds})
    return Stage1Evaluation(y_true, y_pred, p_violative, escalated, metrics)


def _at_targets(
    y_true: list[str],
    y_pred: list[str],
    p_violative: np.ndarray,
    thresholds_at: dict[float, np.ndarray],
    curve: list[dict[str, Any]],
    *,
    safe_label: str,
) -> list[dict[str, Any]]:
    """Per report target: the share auto-decided and its accuracy with the cut chosen on the training
    part's inner folds (what the cascade would do), and the oracle coverage: the most the scored
    items' own risk–coverage curve allows at that accuracy (cut chosen by looking at their labels: an
    upper bound on what any cut could reach with this model)."""
    rows = []
    uncertainty = normalised_entropy(p_violative)
    for target in sorted(thresholds_at):
        m = cascade_metrics(y_true, y_pred, uncertainty > thresholds_at[target], safe_label)
        reaching = [point["coverage"] for point in curve if point["accuracy"] >= target]
        rows.append(
            {
                "target": target,
                "auto_share": m["cascade_auto_share"],
                "auto_binary_accuracy": m["cascade_auto_binary_accuracy"],
                "oracle_coverage": round(max(reaching), 4) if reaching else 0.0,
            }
        )
    return rows


def _candidates(frames: bool, candidates: Sequence[Stage1Config] | None) -> list[Stage1Config]:
    return candidates_with_frames(candidates or CANDIDATES, frames)


def stage1_evaluate(
    *,
    train: Sequence[KuaiModRecord],
    test: Sequence[KuaiModRecord],
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    routing: Routing,
    frames: bool = False,
    candidates: Sequence[Stage1Config] | None = None,
    seed: int = 0,
) -> Stage1Evaluation:
    """Select and fit on one set of records (inner folds only), score another once."""
    if not test:
        raise ModerationError("The test file has no usable records.")
    selection = stage1_select_fit(
        records_as_inputs(train),
        [r.tag for r in train],
        safe_label=safe_label,
        label_order=taxonomy_labels(list(taxonomy), safe_label),
        candidates=_candidates(frames, candidates),
        target_accuracy=routing.target_accuracy,
        random_state=seed,
    )
    y_pred, proba = selection.classifier.predict(records_as_inputs(test))
    threshold = routing.threshold if routing.threshold is not None else selection.threshold
    result = _summarise(
        [r.tag for r in test],
        y_pred,
        selection.classifier.p_violative(proba),
        np.full(len(test), threshold),
        taxonomy=taxonomy,
        safe_label=safe_label,
        routing=routing,
        thresholds_at={t: np.full(len(test), cut) for t, cut in selection.thresholds_at.items()},
    )
    result.metrics["chosen"] = selection.chosen
    result.metrics["inner"] = selection.inner
    return result


def stage1_holdout(
    *,
    records: Sequence[KuaiModRecord],
    fraction: float,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    routing: Routing,
    frames: bool = False,
    seed: int = 0,
) -> Stage1Evaluation:
    """Lock a stratified ``fraction`` of the records away, select and fit on the rest, score the slice once."""
    if not 0.05 <= fraction <= 0.5:
        raise ModerationError(f"The hold-out fraction must be between 0.05 and 0.5 (got {fraction}).")
    binary = [r.tag != safe_label for r in records]
    try:
        rest, locked = train_test_split(list(records), test_size=fraction, stratify=binary, random_state=seed)
    except ValueError as exc:
        raise ModerationError(f"Cannot lock a {fraction:.0%} slice of {len(records)} records: {exc}") from exc
    result = stage1_evaluate(
        train=rest, test=locked, taxonomy=taxonomy, safe_label=safe_label, routing=routing, frames=frames, seed=seed
    )
    result.metrics["n_train"], result.metrics["n_locked"] = len(rest), len(locked)
    return result


def _check_folds(records: Sequence[KuaiModRecord], folds: int, safe_label: str) -> None:
    if folds < 2:
        raise ModerationError("Cross-validation needs at least 2 folds.")
    binary = np.array([r.tag != safe_label for r in records])
    if min(int(binary.sum()), int((~binary).sum())) < folds:
        raise ModerationError(
            f"{folds}-fold cross-validation needs at least {folds} safe and {folds} violative records."
        )


def stage1_cross_validate(
    *,
    records: Sequence[KuaiModRecord],
    folds: int,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    routing: Routing,
    seed: int = 0,
    nested: bool = False,
    frames: bool = False,
    candidates: Sequence[Stage1Config] | None = None,
) -> Stage1Evaluation:
    """Stratified K-fold (by tag); metrics over the pooled outer-fold predictions.

    ``nested``: each outer training part chooses among the candidates on its own inner folds (the
    unbiased estimate). Without it, the first candidate is scored as it is (C and the cascade cut are
    still chosen inside each training part).
    """
    _check_folds(records, folds, safe_label)
    chosen = _candidates(frames, candidates)
    if not nested:
        chosen = chosen[:1]
    tags = [r.tag for r in records]
    nested_result = stage1_nested_cv(
        records_as_inputs(records),
        tags,
        safe_label=safe_label,
        label_order=taxonomy_labels(list(taxonomy), safe_label),
        folds=folds,
        seed=seed,
        candidates=chosen,
        target_accuracy=routing.target_accuracy or 0.9,
    )
    thresholds = np.full(len(records), routing.threshold) if routing.threshold is not None else nested_result.thresholds
    result = _summarise(
        tags,
        nested_result.y_pred,
        nested_result.p_violative,
        thresholds,
        taxonomy=taxonomy,
        safe_label=safe_label,
        routing=routing,
        thresholds_at=nested_result.thresholds_at,
    )
    result.folds = nested_result.folds
    result.metrics["folds_detail"] = nested_result.folds
    result.metrics["outer_fold_binary_accuracy"] = [f["outer_binary_accuracy"] for f in nested_result.folds]
    return result


__all__ = ["Routing", "stage1_cross_validate", "stage1_evaluate", "stage1_holdout", "stratified_splits"]
