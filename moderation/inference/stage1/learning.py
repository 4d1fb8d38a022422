"""A queue that learns, simulated: reviewers label items in the order a queue serves them, stage 1
retrains every ``step`` labels, and its binary accuracy is scored on a locked fold after each retrain.

Orders over the same pool, the same first labels and the same locked fold: ``arrival`` (items in
the order they came in: the baseline) and ``uncertainty`` (the items the current model is least sure
of first, what ``ReviewQueue.order_by_label_value`` serves when there is no user feedback or SLA
pressure). Two variants answer the known weaknesses of pure uncertainty sampling from a small seed set
(it labels a batch of near-identical borderline items, and skews the labelled set away from the
traffic the model is scored on, which also moves the calibrating meta-learner's intercept):

* ``uncertainty+arrival``: half of every batch the most uncertain items, half the next items in
  arrival order (a queue that interleaves label value with first-come-first-served);
* ``uncertainty+diversity``: the batch is spread over the 3× most uncertain items by k-means in the
  model's TF-IDF space, the most uncertain item of each cluster taken (diverse mini-batch active
  learning, Zhdanov 2019, with a pre-set pre-filter of 3×).

Used by ``bench/learning_curve.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.model import BinaryHead, Stage1Config, binary_head_fit

ORDERS = ("arrival", "uncertainty")
VARIANTS = ("uncertainty+arrival", "uncertainty+diversity")
DIVERSITY_PREFILTER = 3


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

    def ratio(self, order: str) -> float:
        """Labels ``order`` needs to reach the arrival order's final accuracy ÷ labels the arrival order
        needs (median curves over seeds). When ``order`` never reaches it, its need counts as one
        retrain past the pool (ratio > 1)."""
        target = self.median("arrival")[-1]
        arrival = self.labels_to_reach("arrival", target) or self.labels[-1]
        reached = self.labels_to_reach(order, target)
        need = reached if reached is not None else self.labels[-1] + (self.labels[-1] - self.labels[-2])
        return round(need / arrival, 4)

    def summary(self) -> dict[str, Any]:
        """``ratio``: the uncertainty order's (``ratio``); the variants' ratios and curves when simulated."""
        target = self.median("arrival")[-1]
        arrival = self.labels_to_reach("arrival", target) or self.labels[-1]
        uncertainty = self.labels_to_reach("uncertainty", target)
        variants = {
            order: {
                "ratio": self.ratio(order),
                "labels_to_reach": self.labels_to_reach(order, target),
                "median": [round(v, 4) for v in self.median(order)],
                "per_seed": [[round(v, 4) for v in c] for c in self.curves[order]],
            }
            for order in VARIANTS
            if order in self.curves
        }
        return {
            "ratio": self.ratio("uncertainty"),
            "arrival_final_accuracy": round(target, 4),
            "labels_arrival": arrival,
            "labels_uncertainty": uncertainty,
            "labels": self.labels,
            "arrival_median": [round(v, 4) for v in self.median("arrival")],
            "uncertainty_median": [round(v, 4) for v in self.median("uncertainty")],
            "arrival_per_seed": [[round(v, 4) for v in c] for c in self.curves["arrival"]],
            "uncertainty_per_seed": [[round(v, 4) for v in c] for c in self.curves["uncertainty"]],
            "n_locked": self.n_locked,
            "variants": variants,
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
    orders: Sequence[str] = ORDERS,
    jobs: int = 1,
) -> LearningCurves:
    config = config or Stage1Config()
    unknown = set(orders) - set(ORDERS) - set(VARIANTS)
    if unknown or not set(ORDERS) <= set(orders):
        raise ValueError(f"orders must hold {ORDERS} and may add {VARIANTS} (got {list(orders)})")
    y = np.asarray(violative, dtype=int)
    index = np.arange(len(items))
    pool, locked = train_test_split(index, test_size=locked_fraction, stratify=y, random_state=0)
    sizes = list(range(start, len(pool) + 1, step))
    if sizes[-1] != len(pool):
        sizes.append(len(pool))
    tasks = [(seed, order) for seed in seeds for order in orders]
    args = (items, y, pool, locked, sizes, start, step, config)
    if jobs > 1:  # each (seed, order) curve is independent: spread them over processes
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs)(delayed(_curve)(*args, seed, order) for seed, order in tasks)
    else:
        results = [_curve(*args, seed, order) for seed, order in tasks]
    curves: dict[str, list[list[float]]] = {order: [] for order in orders}
    for (_, order), curve in zip(tasks, results, strict=True):
        curves[order].append(curve)
    return LearningCurves(labels=sizes, curves=curves, n_locked=len(locked))


def _curve(
    items: Sequence[TextItem],
    y: np.ndarray,
    pool: np.ndarray,
    locked: np.ndarray,
    sizes: list[int],
    start: int,
    step: int,
    config: Stage1Config,
    seed: int,
    order: str,
) -> list[float]:
    """Locked-fold accuracy after each retrain as reviewers label the pool in ``order`` (seed: arrival order)."""
    arrival = np.random.default_rng(seed).permutation(pool)
    locked_items = [items[i] for i in locked]
    labelled, remaining = list(arrival[:start]), list(arrival[start:])
    curve = []
    for size in sizes:
        head = binary_head_fit([items[i] for i in labelled], y[labelled], config, seed)
        p = head.predict_proba(locked_items)[:, 1]
        curve.append(float(np.mean((p > 0.5) == (y[locked] == 1))))
        take = min(size + step, len(pool)) - len(labelled) if size != sizes[-1] else 0
        if take <= 0:
            continue
        if order == "arrival":
            labelled, remaining = labelled + remaining[:take], remaining[take:]
            continue
        chosen = _next_batch(order, head, [items[i] for i in remaining], take, seed)
        labelled += [remaining[k] for k in sorted(chosen)]
        remaining = [item for k, item in enumerate(remaining) if k not in chosen]
    return curve


def _next_batch(order: str, head: BinaryHead, remaining: Sequence[TextItem], take: int, seed: int) -> set[int]:
    """Positions (in ``remaining``, which is in arrival order) of the next ``take`` items ``order`` serves."""
    p = head.predict_proba(remaining)[:, 1]
    by_uncertainty = np.argsort(np.abs(p - 0.5), kind="stable")
    if order == "uncertainty":
        return set(by_uncertainty[:take].tolist())
    if order == "uncertainty+arrival":
        chosen = set(by_uncertainty[: (take + 1) // 2].tolist())
        for k in range(len(remaining)):  # then the earliest arrivals not already taken
            if len(chosen) >= take:
                break
            chosen.add(k)
        return chosen
    # uncertainty+diversity
    shortlist = by_uncertainty[: DIVERSITY_PREFILTER * take]
    if len(shortlist) <= take:
        return set(shortlist.tolist())
    x = normalize(sparse.hstack([block.transform([remaining[k] for k in shortlist]) for block in head.blocks]).tocsr())
    with threadpool_limits(limits=1):
        clusters = KMeans(n_clusters=take, n_init=3, random_state=seed).fit_predict(x)
    chosen = set()
    for cluster in range(take):
        members = np.flatnonzero(clusters == cluster)
        if len(members):
            chosen.add(int(shortlist[members[0]]))  # shortlist is most uncertain first
    for k in shortlist:  # empty clusters (duplicate rows): fill with the next most uncertain
        if len(chosen) >= take:
            break
        chosen.add(int(k))
    return chosen
