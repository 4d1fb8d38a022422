"""The expected value of a human label: the one rule a review queue with ``order_by_label_value``
serves by (``moderation.review.services.review_label_value``) and the learning-curve simulation
(``stage1.learning``, ``bench/learning_curve.py``) orders its pool by. Pure numpy: no database.

A label is worth more the less sure stage 1 is of the item (``uncertainty``, 0..1), when users
contradict the model (``feedback_disagreement``) and the closer the item is to its SLA deadline
(``sla_spent``, the share of the SLA already used). The simulation has no feedback and no SLA, so it
ranks by the uncertainty term alone, through the same ``label_value`` and ``label_value_order``.

``uncertainty_term`` is the stage-1 uncertainty the queue uses: the normalised binary entropy of the
calibrated P(violative) (``Decision.cascade_uncertainty``). The other terms here (committee
disagreement, class-balanced margin, information density) are the alternatives the learning-curve
bench compares against it; ``LABEL_VALUE_TERM`` names the one the product uses (bench/RESULTS.md, "Stage 1").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moderation.inference.stage1.routing import normalised_entropy

# Weights of the expected value of a human label (sum to 1).
LABEL_VALUE_WEIGHTS = {"uncertainty": 0.6, "feedback_disagreement": 0.3, "sla": 0.1}

# Which uncertainty term the queue uses. The learning-curve screen (bench/RESULTS.md, "Stage 1") picked "density" on seeds
# 5-9 by a ratio read off a flat, noisy curve; its mean accuracy over the curve is no better than uncertainty's, and
# serving it would need the pending pool's mean TF-IDF vector at routing time. No order reached the 0.6.
LABEL_VALUE_TERM = "uncertainty"


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


def label_value_order(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Positions of the items, most valuable label first; equal values keep their given (arrival) order."""
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")


def uncertainty_term(p_violative: np.ndarray) -> np.ndarray:
    """The queue's stage-1 term: normalised binary entropy of the calibrated P(violative)."""
    return normalised_entropy(np.asarray(p_violative, dtype=float))


def committee_term(member_p: np.ndarray) -> np.ndarray:
    """Query by committee (McCallum & Nigam 1998): mean KL divergence of each member's P(violative)
    from the committee's mean, in bits (0 = the members agree). ``member_p``: members × items."""
    p = np.clip(np.asarray(member_p, dtype=float), 1e-6, 1 - 1e-6)
    mean = p.mean(axis=0)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * np.log2(a / b) + (1 - a) * np.log2((1 - a) / (1 - b))

    return np.clip(kl(p, mean[None, :]).mean(axis=0), 0.0, 1.0)


def class_balanced_term(p_violative: np.ndarray, violative_share: float) -> np.ndarray:
    """Uncertainty weighted against the labelled set's class skew: an item predicted to be of the
    class the labels hold less of counts more (weight 0.5 / share of that class, as sklearn's
    ``balanced`` class weight), so uncertainty sampling does not keep labelling one side."""
    p = np.asarray(p_violative, dtype=float)
    share = min(max(violative_share, 1e-3), 1 - 1e-3)
    weight = np.where(p > 0.5, 0.5 / share, 0.5 / (1 - share))
    return uncertainty_term(p) * weight / max(0.5 / share, 0.5 / (1 - share))


def density_term(p_violative: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """Information density (Settles & Craven 2008, β = 1): uncertainty × the item's mean cosine
    similarity to the pool, so outliers (one-off garbled OCR) are not labelled first."""
    return uncertainty_term(p_violative) * np.clip(np.asarray(similarity, dtype=float), 0.0, 1.0)
