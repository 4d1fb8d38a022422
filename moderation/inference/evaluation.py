"""Offline evaluation of the cascade's stage 1 on KuaiMod-format files (no database rows needed)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from moderation.errors import ModerationError
from moderation.inference.cascade import Stage1Config, TextItem, cascade_route, stage1_fit
from moderation.inference.kuaimod import KuaiModRecord
from moderation.inference.metrics import cascade_metrics, kuaimod_metrics


@dataclass
class Stage1Evaluation:
    y_true: list[str]
    y_pred: list[str]
    p_violative: np.ndarray
    escalated: np.ndarray
    metrics: dict[str, Any]


def _items(records: Sequence[KuaiModRecord]) -> list[TextItem]:
    return [TextItem(title=r.title, ocr=r.ocr, asr=r.asr, frames=r.frames) for r in records]


def _label_order(taxonomy: Sequence[dict[str, Any]], safe_label: str) -> list[str]:
    return [safe_label] + [tag["key"] for major in taxonomy for tag in major.get("tags", [])]


def _fit_predict(
    train: Sequence[KuaiModRecord],
    test: Sequence[KuaiModRecord],
    *,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    config: Stage1Config | None,
) -> tuple[list[str], np.ndarray]:
    classifier = stage1_fit(
        _items(train),
        [r.tag for r in train],
        safe_label=safe_label,
        label_order=_label_order(taxonomy, safe_label),
        config=config,
    )
    labels, proba = classifier.predict(_items(test))
    return labels, classifier.p_violative(proba)


def _summarise(
    y_true: list[str],
    y_pred: list[str],
    p_violative: np.ndarray,
    *,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    threshold: float,
) -> Stage1Evaluation:
    route = cascade_route(p_violative, threshold)
    metrics = kuaimod_metrics(y_true, y_pred, taxonomy, safe_label)
    metrics.update(cascade_metrics(y_true, y_pred, route.escalate, safe_label))
    metrics["escalate_threshold"] = threshold
    return Stage1Evaluation(y_true, y_pred, p_violative, route.escalate, metrics)


def stage1_evaluate(
    *,
    train: Sequence[KuaiModRecord],
    test: Sequence[KuaiModRecord],
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    threshold: float,
    config: Stage1Config | None = None,
) -> Stage1Evaluation:
    """Train on one set of records, report on another."""
    if not test:
        raise ModerationError("The test file has no usable records.")
    y_pred, p_violative = _fit_predict(train, test, taxonomy=taxonomy, safe_label=safe_label, config=config)
    return _summarise(
        [r.tag for r in test], y_pred, p_violative, taxonomy=taxonomy, safe_label=safe_label, threshold=threshold
    )


def stage1_cross_validate(
    *,
    records: Sequence[KuaiModRecord],
    folds: int,
    taxonomy: Sequence[dict[str, Any]],
    safe_label: str,
    threshold: float,
    seed: int = 0,
    config: Stage1Config | None = None,
) -> Stage1Evaluation:
    """Stratified K-fold over one set (stratified by tag); metrics over the pooled out-of-fold predictions.

    Everything that is fitted (vocabularies, scalers, models, calibration) is fitted inside each
    training fold only.
    """
    if folds < 2:
        raise ModerationError("Cross-validation needs at least 2 folds.")
    tags = np.asarray([r.tag for r in records], dtype=object)
    binary = tags != safe_label
    if min(int(binary.sum()), int((~binary).sum())) < folds:
        raise ModerationError(
            f"{folds}-fold cross-validation needs at least {folds} safe and {folds} violative records."
        )
    y_pred: list[str] = [""] * len(records)
    p_violative = np.zeros(len(records))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare tags have fewer members than folds; stratification is then best-effort, as intended.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        splits = list(splitter.split(np.zeros(len(records)), tags))
    for train_idx, test_idx in splits:
        labels, p = _fit_predict(
            [records[i] for i in train_idx],
            [records[i] for i in test_idx],
            taxonomy=taxonomy,
            safe_label=safe_label,
            config=config,
        )
        for i, label, pv in zip(test_idx, labels, p, strict=True):
            y_pred[i] = label
            p_violative[i] = pv
    return _summarise(list(tags), y_pred, p_violative, taxonomy=taxonomy, safe_label=safe_label, threshold=threshold)
