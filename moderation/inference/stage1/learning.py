"""A queue that learns, simulated: reviewers label items in the order a queue serves them, stage 1
retrains every ``step`` labels, and its binary accuracy is scored on a locked fold after each retrain.

Two orders over the same pool, the same first labels and the same locked fold: ``arrival`` (items in
the order they came in: the baseline) and ``uncertainty`` (the items the current model is least sure
of first, what ``ReviewQueue.order_by_label_value`` serves when there is no user feedback or SLA
pressure). Used by ``bench/learning_curve.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.model import Stage1Config, binary_head_fit

ORDERS = ("arrival", "uncertainty")


@dataclass
class LearningCurves:
    labels: list[int]  # label counts at which the model was retrained and scored
    curves: dict[str, list[list[float]]]  # order -> one accuracy curve per seed
    n_locked: int

    def median(self, order: str) -> list[float]:
        return [statistics.median(values) for values in zip(*self.curves[order], strict=True)]

    def labels_to_reach(self, order: str, accuracy: float) -> int | None:
        for n, value in zip(self.labels, self.median(order), strict=True):
            if value >= accuracy - 1e-9:
                return n
        return None

    def summary(self) -> dict[str, Any]:
        """``ratio``: labels the uncertainty order needs to reach the arrival order's final accuracy ÷
        labels the arrival order needs (median curves over seeds). When the uncertainty order never
        reaches it, its need counts as one retrain past the pool (ratio > 1)."""
        target = self.median("arrival")[-1]
        arrival = self.labels_to_reach("arrival", target) or self.labels[-1]
        uncertainty = self.labels_to_reach("uncertainty", target)
        need = uncertainty if uncertainty is not None else self.labels[-1] + (self.labels[-1] - self.labels[-2])
        return {
            "ratio": round(need / arrival, 4),
            "arrival_final_accuracy": round(target, 4),
            "labels_arrival": arrival,
            "labels_uncertainty": uncertainty,
            "labels": self.labels,
            "arrival_median": [round(v, 4) for v in self.median("arrival")],
            "uncertainty_median": [round(v, 4) for v in self.median("uncertainty")],
            "arrival_per_seed": [[round(v, 4) for v in c] for c in self.curves["arrival"]],
            "uncertainty_per_seed": [[round(v, 4) for v in c] for c in self.curves["uncertainty"]],
            "n_locked": self.n_locked,
        }


def simulate_learning_curves(
    items: Sequence[TextItem],
    violative: Sequence[bool],
    *,
    start: int = 40,
    step: int = 20,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    locked_fraction: float = 0.25,
    config: Stage1Config | None = None,
) -> LearningCurves:
    config = config or Stage1Config()
    y = np.asarray(violative, dtype=int)
    index = np.arange(len(items))
    pool, locked = train_test_split(index, test_size=locked_fraction, stratify=y, random_state=0)
    locked_items = [items[i] for i in locked]
    sizes = list(range(start, len(pool) + 1, step))
    if sizes[-1] != len(pool):
        sizes.append(len(pool))
    curves: dict[str, list[list[float]]] = {order: [] for order in ORDERS}
    for seed in seeds:
        arrival = np.random.default_rng(seed).permutation(pool)
        for order in ORDERS:
            labelled, remaining = list(arrival[:start]), list(arrival[start:])
            curve = []
            for size in sizes:
                head = binary_head_fit([items[i] for i in labelled], y[labelled], config, seed)
                p = head.predict_proba(locked_items)[:, 1]
                curve.append(float(np.mean((p > 0.5) == (y[locked] == 1))))
                take = min(size + step, len(pool)) - len(labelled) if size != sizes[-1] else 0
                if take <= 0:
                    continue
                if order == "uncertainty":
                    scores = head.predict_proba([items[i] for i in remaining])[:, 1]
                    chosen = set(np.argsort(np.abs(scores - 0.5), kind="stable")[:take].tolist())
                    labelled += [remaining[k] for k in sorted(chosen)]
                    remaining = [item for k, item in enumerate(remaining) if k not in chosen]
                else:
                    labelled, remaining = labelled + remaining[:take], remaining[take:]
            curves[order].append(curve)
    return LearningCurves(labels=sizes, curves=curves, n_locked=len(locked))
