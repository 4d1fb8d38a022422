"""The expected value of a human label: the one rule a review queue with ``order_by_label_value``
serves by (``moderation.review.services.review_label_value``) and the learning-curve simulation
(``bench/_stage1_learning.py``, run by ``bench/learning_curve.py``) orders its pool by. Pure numpy: no database.

A label is worth more the less sure stage 1 is of the item (``uncertainty``, 0..1), when users
contradict the model (``feedback_disagreement``) and the closer the item is to its SLA deadline
(``sla_spent``, the share of the SLA already used). The simulation has no feedback and no SLA, so it
ranks by the uncertainty term alone, through the same ``label_value``.

``uncertainty_term`` is the stage-1 uncertainty the queue uses: the normalised binary entropy of the
calibrated P(violative) (``Decision.cascade_uncertainty``). The alternatives the learning-curve bench
compared against it (committee disagreement, class-balanced margin, information density; none adopted,
bench/RESULTS.md, "Stage 1") live in the bench beside the simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moderation.inference.stage1.routing import normalised_entropy

# Weights of the expected value of a human label (sum to 1).
LABEL_VALUE_WEIGHTS = {"uncertainty": 0.6, "feedback_disagreement": 0.3, "sla": 0.1}


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def label_value(*, uncertainty: float, feedback_disagreement: bool = False, sla_spent: float = 0.0) -> float:
    """0..1: what a human label of one item is expected to be worth."""
    w = LABEL_VALUE_WEIGHTS
    value = (
        w["uncertainty"] * _unit(uncertainty)
        + w["feedback_disagreement"] * float(bool(feedback_disagreement))
        + w["sla"] * _unit(sla_spent)
    )
    return _unit(value)


def uncertainty_term(p_violative: np.ndarray) -> np.ndarray:
    """The queue's stage-1 term: normalised binary entropy of the calibrated P(violative)."""
    return normalised_entropy(np.asarray(p_violative, dtype=float))


# Batch orders over a pending pool (issue 15, item 5: round of 2026-12-05, pre-registered in bench/RESULTS.md).
# They choose the next ``take`` items to label from vectors of the labelled items and the candidates together (rows
# L2-normalised, e.g. stage 1's own TF-IDF columns), instead of a per-item value. The learning-curve bench calls them.
TYPICAL_NEIGHBOURS = 20  # TypiClust's k for typicality
TYPICAL_MIN_CLUSTER = 5  # at most n / 5 clusters, so a cluster has items to be typical of


def _cosine_distances(vectors: Any) -> np.ndarray:
    """Dense cosine distances between L2-normalised rows (sparse or dense)."""
    product = vectors @ vectors.T
    similarity = product.toarray() if hasattr(product, "toarray") else np.asarray(product)
    return np.clip(1.0 - similarity, 0.0, 2.0)


def typical_batch(vectors: Any, labelled: Sequence[bool] | np.ndarray, take: int, seed: int) -> list[int]:
    """TypiClust (Hacohen, Dekel & Weinshall 2022, for small label budgets): k-means of all items into
    ``min(labelled + take, n / TYPICAL_MIN_CLUSTER)`` clusters; each pick goes to the cluster with the fewest
    labelled (or already picked) items, ties to the larger cluster, and takes its most typical unlabelled item
    (typicality = 1 / mean cosine distance to its ``TYPICAL_NEIGHBOURS`` nearest neighbours in the cluster).
    Reads no model score: representative items of uncovered regions first. Row positions of the picks."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    is_labelled = np.asarray(labelled, dtype=bool)
    n = len(is_labelled)
    candidates = np.flatnonzero(~is_labelled)
    if len(candidates) <= take:
        return candidates.tolist()
    k = max(1, min(int(is_labelled.sum()) + take, n // TYPICAL_MIN_CLUSTER))
    with threadpool_limits(limits=1):
        clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    distance = _cosine_distances(vectors)
    typicality = np.zeros(n)
    for cluster in range(k):
        members = np.flatnonzero(clusters == cluster)
        if len(members) < 2:
            continue
        within = distance[np.ix_(members, members)]
        np.fill_diagonal(within, np.inf)
        nearest = np.sort(within, axis=1)[:, : min(TYPICAL_NEIGHBOURS, len(members) - 1)]
        typicality[members] = 1.0 / (nearest.mean(axis=1) + 1e-6)
    covered = np.bincount(clusters[is_labelled], minlength=k)
    sizes = np.bincount(clusters, minlength=k)
    open_ = ~is_labelled
    chosen: list[int] = []
    while len(chosen) < take:
        available = [c for c in range(k) if open_[clusters == c].any()]
        cluster = min(available, key=lambda c: (covered[c], -sizes[c], c))
        members = np.flatnonzero((clusters == cluster) & open_)
        pick = int(members[np.argmax(typicality[members])])  # ties: the earliest row
        chosen.append(pick)
        open_[pick] = False
        covered[cluster] += 1
    return chosen


def k_center_batch(vectors: Any, labelled: Sequence[bool] | np.ndarray, take: int) -> list[int]:
    """Core-set greedy k-center (Sener & Savarese 2018): each pick is the unlabelled item farthest (cosine
    distance) from every labelled or already picked item, so a batch covers the pool instead of repeating one
    kind of item. Reads no model score. Row positions of the picks; ties: the earliest row."""
    is_labelled = np.asarray(labelled, dtype=bool)
    candidates = np.flatnonzero(~is_labelled)
    if len(candidates) <= take:
        return candidates.tolist()
    distance = _cosine_distances(vectors)
    nearest = distance[:, is_labelled].min(axis=1) if is_labelled.any() else np.full(len(is_labelled), np.inf)
    nearest[is_labelled] = -np.inf
    chosen: list[int] = []
    for _ in range(take):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, distance[:, pick])
        nearest[chosen] = -np.inf
    return chosen
