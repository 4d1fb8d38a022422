"""Honest model selection for stage 1.

``stage1_select_fit`` is what training, ``evaluate --test`` and each outer fold of nested
cross-validation run: every candidate is fitted on the training items, each candidate's held-out
(inner-fold) predictions of those same training items choose the candidate, and the chosen model's
held-out risk–coverage curve sets the cascade's cut for a target accuracy. Nothing outside the
training items is looked at, so the items it is then scored on are unseen by every choice: features
(n-gram range), C (per field, inside the head), stacking (per-field stack or one joint model), the
cascade threshold. ``stage1_nested_cv`` reports the outer folds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from moderation.errors import ModerationError
from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.model import (
    BinaryHead,
    Stage1Classifier,
    Stage1Config,
    binary_head_fit,
    stage1_fit,
)
from moderation.inference.stage1.routing import threshold_for_target

# Kept small on purpose: each candidate costs one fit per outer fold, and every extra candidate is
# one more chance to fit the inner folds' noise.
CANDIDATES: tuple[Stage1Config, ...] = (
    Stage1Config(name="stacked-char12"),
    Stage1Config(name="stacked-char13", ngram_range=(1, 3)),
    Stage1Config(name="joint-char12", binary_head="joint"),
)


# Targets whose coverage every selection also reports (the cut for each chosen on the same inner
# folds as the routing target's): the risk–coverage curve of the chosen model under nested CV.
REPORT_TARGETS: tuple[float, ...] = (0.90, 0.92, 0.95)


def choose_candidate(inner: dict[str, dict[str, float]]) -> str:
    """The candidate with the best inner-fold binary accuracy; ties go to the lower log-loss."""
    return max(inner, key=lambda name: (round(inner[name]["accuracy"], 6), -inner[name]["log_loss"]))


def candidates_with_frames(candidates: Sequence[Stage1Config], frames: bool) -> list[Stage1Config]:
    if not frames:
        return list(candidates)
    return [replace(c, name=f"{c.name}+frames", frames_signal=True) for c in candidates]


@dataclass
class Selection:
    classifier: Stage1Classifier
    chosen: str
    # Per candidate: held-out (inner-fold) binary accuracy and log-loss on the training items.
    inner: dict[str, dict[str, float]] = field(default_factory=dict)
    # The escalation threshold (normalised entropy) meeting the target on the inner folds.
    threshold: float | None = None
    # The same for each of REPORT_TARGETS (and the routing target).
    thresholds_at: dict[float, float] = field(default_factory=dict)


def stage1_select_fit(
    items: Sequence[TextItem],
    labels: Sequence[str],
    *,
    safe_label: str,
    label_order: Sequence[str] | None = None,
    candidates: Sequence[Stage1Config] = CANDIDATES,
    target_accuracy: float | None = None,
    random_state: int = 0,
    multiclass: bool = True,
) -> Selection:
    """Fit every candidate, keep the one with the best inner-fold binary accuracy (ties: log-loss)."""
    y_binary = np.asarray([label != safe_label for label in labels], dtype=int)
    if min(int(y_binary.sum()), len(y_binary) - int(y_binary.sum())) < 2:
        raise ModerationError(
            "Stage 1 needs at least 2 safe and 2 violative labelled items "
            f"(have {len(y_binary) - int(y_binary.sum())} safe, {int(y_binary.sum())} violative)."
        )
    heads: dict[str, BinaryHead] = {}
    inner: dict[str, dict[str, float]] = {}
    for config in candidates:
        head = binary_head_fit(items, y_binary, config, random_state)
        heads[config.name] = head
        inner[config.name] = {"accuracy": head.held_out_accuracy, "log_loss": head.held_out_log_loss}
    chosen = choose_candidate(inner)
    head = heads[chosen]
    classifier = stage1_fit(
        items,
        labels,
        safe_label=safe_label,
        label_order=label_order,
        binary=head,
        random_state=random_state,
        multiclass=multiclass,
    )
    correct = (head.held_out_p > 0.5) == (head.held_out_y == 1)
    targets = sorted({*REPORT_TARGETS, *([target_accuracy] if target_accuracy is not None else [])})
    thresholds_at = {t: threshold_for_target(head.held_out_p, correct, t) for t in targets}
    threshold = thresholds_at[target_accuracy] if target_accuracy is not None else None
    return Selection(
        classifier=classifier, chosen=chosen, inner=inner, threshold=threshold, thresholds_at=thresholds_at
    )


@dataclass
class NestedResult:
    """Pooled outer-fold predictions of nested cross-validation, and what each outer fold chose."""

    y_pred: list[str]
    p_violative: np.ndarray
    thresholds: np.ndarray  # the escalation threshold each item's outer fold chose on its inner folds
    folds: list[dict[str, Any]]
    # Per REPORT_TARGETS target: the threshold each item's outer fold chose for it on its inner folds.
    thresholds_at: dict[float, np.ndarray] = field(default_factory=dict)


def stratified_splits(tags: Sequence[str], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare tags have fewer members than folds; stratification is then best-effort, as intended.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        return list(splitter.split(np.zeros(len(tags)), np.asarray(tags, dtype=object)))


def stage1_nested_cv(
    items: Sequence[TextItem],
    labels: Sequence[str],
    *,
    safe_label: str,
    label_order: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    candidates: Sequence[Stage1Config] = CANDIDATES,
    target_accuracy: float = 0.92,
) -> NestedResult:
    """Outer stratified K-fold; inside each outer training part, ``stage1_select_fit`` makes every choice."""
    n = len(items)
    y_pred = [""] * n
    p_violative = np.zeros(n)
    thresholds = np.zeros(n)
    thresholds_at: dict[float, np.ndarray] = {}
    report = []
    for k, (train, test) in enumerate(stratified_splits(labels, folds, seed)):
        selection = stage1_select_fit(
            [items[i] for i in train],
            [labels[i] for i in train],
            safe_label=safe_label,
            label_order=label_order,
            candidates=candidates,
            target_accuracy=target_accuracy,
            random_state=seed,
        )
        predicted, proba = selection.classifier.predict([items[i] for i in test])
        p = selection.classifier.p_violative(proba)
        for j, i in enumerate(test):
            y_pred[i], p_violative[i], thresholds[i] = predicted[j], p[j], selection.threshold
        for target, cut in selection.thresholds_at.items():
            thresholds_at.setdefault(target, np.zeros(n))[test] = cut
        truth = np.array([labels[i] != safe_label for i in test])
        report.append(
            {
                "fold": k,
                "chosen": selection.chosen,
                "threshold": selection.threshold,
                "inner": selection.inner,
                "outer_binary_accuracy": float(np.mean((p > 0.5) == truth)),
            }
        )
    return NestedResult(
        y_pred=y_pred, p_violative=p_violative, thresholds=thresholds, folds=report, thresholds_at=thresholds_at
    )
