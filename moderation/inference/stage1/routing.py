"""Routing: which items stage 1 decides and which go to the VLM.

Stage 1's P(violative) is calibrated on held-out data (see ``model``), so for an item it decides,
``confidence = max(p, 1 - p)`` is the probability that the decision is right. The cascade is set by a
target accuracy: it auto-decides the most confident items, as many as it can while the accuracy of
everything it auto-decides stays at or above the target on held-out evidence (the risk–coverage
curve), and escalates the rest. The cut is stored as the equivalent normalised binary entropy
(``escalate_threshold``), which is monotone in the confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from moderation.errors import ModerationError


@dataclass(frozen=True)
class Route:
    """Per item: its uncertainty (normalised entropy, 0..1) and whether it goes to stage 2."""

    uncertainty: np.ndarray
    escalate: np.ndarray

    @property
    def auto_share(self) -> float:
        return float((~self.escalate).mean()) if len(self.escalate) else 0.0


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by log(k): 0 for a certain distribution, 1 for a uniform one.

    A 1-D array is read as P(violative) of a binary distribution.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    k = p.shape[1]
    if k < 2:
        return np.zeros(p.shape[0])
    clipped = np.clip(p, 1e-12, 1.0)
    entropy = -(np.where(p > 0, p * np.log(clipped), 0.0)).sum(axis=1)
    return np.clip(entropy / math.log(k), 0.0, 1.0)


def accuracy_percent(value: float) -> str:
    """A target accuracy as a percentage with the tenth it was set to: 99.9 % read "100%" when rounded."""
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:  # also refuses nan
        raise ModerationError(f"The escalation threshold must be between 0 and 1 (got {threshold}).")


def check_target(target: float, *, typed: str | None = None) -> None:
    """``typed``: what the user typed, named in the refusal (a percentage is converted before this check,
    so the number itself could read as a different one: 1.5 typed is 0.015 here)."""
    if not 0.5 <= target <= 1.0:  # also refuses nan
        shown = f"“{typed[:20]}” is not" if typed is not None else f"got {target}"
        raise ModerationError(f"The target accuracy must be between 0.5 and 1 (or 50 % to 100 %); {shown}.")


def cascade_route(p_violative: np.ndarray, threshold: float) -> Route:
    """Escalate items whose uncertainty (normalised binary entropy) is above ``threshold``."""
    check_threshold(threshold)
    uncertainty = normalised_entropy(p_violative)
    return Route(uncertainty=uncertainty, escalate=uncertainty > threshold)


def confidence(p_violative: np.ndarray) -> np.ndarray:
    p = np.asarray(p_violative, dtype=float)
    return np.maximum(p, 1.0 - p)


def entropy_for_confidence(cut: float) -> float:
    """The normalised binary entropy of an item at confidence ``cut``: the matching escalation threshold."""
    return float(normalised_entropy(np.array([min(max(cut, 0.5), 1.0)]))[0])


def risk_coverage(p_violative: np.ndarray, correct: np.ndarray) -> list[dict[str, Any]]:
    """Accuracy of the auto-decided items against the share auto-decided, for every confidence cut
    (most confident first): one point per distinct confidence, ``cut`` = the least confidence admitted."""
    conf = confidence(p_violative)
    right = np.asarray(correct, dtype=bool)
    if len(conf) == 0:
        return []
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    cumulative = np.cumsum(right)
    points = []
    n = len(conf)
    for k in range(n):
        if k + 1 < n and conf[k + 1] == conf[k]:
            continue  # ties are admitted together
        points.append(
            {
                "cut": float(conf[k]),
                "coverage": (k + 1) / n,
                "accuracy": float(cumulative[k] / (k + 1)),
                "n": k + 1,
            }
        )
    return points


def cut_for_target(points: list[dict[str, Any]], target: float) -> float | None:
    """The least confidence cut whose auto-decided items reach ``target`` accuracy (the largest
    coverage); None when no cut does (then everything is escalated)."""
    check_target(target)
    reaching = [p for p in points if p["accuracy"] >= target]
    return min(p["cut"] for p in reaching) if reaching else None


def threshold_for_target(p_violative: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The escalation threshold (normalised entropy) that meets ``target`` on the given held-out
    evidence; 0 (escalate all but certain items) when no cut reaches it."""
    cut = cut_for_target(risk_coverage(p_violative, correct), target)
    return 0.0 if cut is None else entropy_for_confidence(cut)


def curve_summary(points: list[dict[str, Any]], size: int = 41) -> list[dict[str, Any]]:
    """At most ``size`` points of a curve, evenly spread over coverage (for storing and drawing)."""
    if len(points) <= size:
        return points
    index = np.unique(np.linspace(0, len(points) - 1, size).round().astype(int))
    return [points[i] for i in index]
