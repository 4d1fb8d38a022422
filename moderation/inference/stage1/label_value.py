"""The expected value of a human label: the one rule a review queue with ``order_by_label_value``
serves by (``moderation.review.services.review_label_value``) and the learning-curve simulation
(``bench/_stage1_learning.py``, run by ``bench/learning_curve.py``) orders its pool by. Pure numpy: no database.

A label is worth more the less sure stage 1 is of the item (``uncertainty``, 0..1), when users
contradict the model (``feedback_disagreement``) and the closer the item is to its SLA deadline
(``sla_spent``, the share of the SLA already used). The simulation has no feedback and no SLA, so it
ranks by the uncertainty term alone, through the same ``label_value``.

``uncertainty_term`` is the stage-1 uncertainty the queue uses: the normalised binary entropy of the
calibrated P(violative) (``Decision.cascade_uncertainty``). The alternatives the learning-curve bench
compared against it (committee disagreement, class-balanced margin, information density, and the label-free batch
orders typical and k-center; none adopted, bench/RESULTS.md, "Stage 1") live in the bench beside the simulation.
"""

from __future__ import annotations

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
