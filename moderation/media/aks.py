"""Keyframe selection over per-frame relevance scores (BLM-Guard; Adaptive Keyframe Sampling, Tang et al. CVPR 2025).

Pure functions over a list of scores (one per 1 fps candidate, in time order); they return the sorted
indices of the chosen frames. Nothing here reads the database or decodes video.

* ``select_bin_top``: coverage + salience. The timeline is cut into ``k // 2`` equal bins and the best
  frame of each bin is taken (nothing is left unseen for long), then the remaining slots go to the
  highest-scoring frames not yet chosen (what the policy cares about is not missed).
* ``select_adaptive``: the AKS "ADA" split. A segment whose scores are *peaky* (the mean of its top-m
  frames exceeds the segment mean by ``threshold`` on min-max normalised scores) already knows where
  its relevant frames are, so it takes its top-m. A *flat* segment is halved, each half getting half
  the budget, and each half is judged again, up to ``max_depth``; a leaf takes its top frames (evenly
  spaced ones when its scores are all equal). This mirrors the paper's reference implementation: it
  splits segments that are *not* peaky, for coverage; an issue text describing the reverse (split
  while the top-m mean exceeds the mean) would spend the budget where it is least needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_EPS = 1e-9


def select_uniform(count: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``count`` frames, first and last included."""
    if k <= 0 or count <= 0:
        return []
    if count <= k:
        return list(range(count))
    if k == 1:
        return [count // 2]
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def _top(scores: Sequence[float], indices: Sequence[int], n: int) -> list[int]:
    """The ``n`` best of ``indices`` by score; ties (and all-equal segments) fall back to even spacing."""
    if n <= 0 or not indices:
        return []
    values = [scores[i] for i in indices]
    if max(values) - min(values) <= _EPS:
        return [indices[j] for j in select_uniform(len(indices), n)]
    # Stable: among equal scores the earlier frame wins, so the result is deterministic.
    ranked = sorted(indices, key=lambda i: (-scores[i], i))
    return sorted(ranked[:n])


def _fill(scores: Sequence[float], chosen: set[int], k: int) -> list[int]:
    """Top up ``chosen`` to ``k`` frames with the best remaining ones."""
    if len(chosen) < k:
        rest = [i for i in range(len(scores)) if i not in chosen]
        chosen |= set(_top(scores, rest, k - len(chosen)))
    return sorted(chosen)


def select_bin_top(scores: Sequence[float], k: int) -> list[int]:
    """BIN+TOP: the best frame of each of ``k // 2`` equal time bins, then the best of the rest."""
    n = len(scores)
    if k <= 0 or n == 0:
        return []
    if n <= k:
        return list(range(n))
    bins = max(1, k // 2)
    chosen: set[int] = set()
    for b in range(bins):
        lo, hi = (b * n) // bins, ((b + 1) * n) // bins
        chosen |= set(_top(scores, list(range(lo, hi)), 1))
    return _fill(scores, chosen, k)


def _normalise(scores: Sequence[float]) -> list[float]:
    lo, hi = min(scores), max(scores)
    if hi - lo <= _EPS:
        return [0.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def _peaky(values: Sequence[float], m: int, threshold: float) -> bool:
    top = sorted(values, reverse=True)[: max(1, m)]
    return (sum(top) / len(top)) - (sum(values) / len(values)) > threshold


def adaptive_segments(
    scores: Sequence[float], k: int, *, threshold: float = 0.3, max_depth: int | None = None
) -> list[tuple[int, int, int]]:
    """The AKS split as ``(start, end, budget)`` segments (end exclusive), in time order.

    Scores are min-max normalised first, so ``threshold`` is a fraction of the video's score range.
    ``max_depth`` defaults to log2(k): the deepest level still has one frame of budget per segment.
    """
    n = len(scores)
    if n == 0 or k <= 0:
        return []
    norm = _normalise(scores)
    depth_limit = max_depth if max_depth is not None else max(0, int(math.log2(k)))
    out: list[tuple[int, int, int]] = []

    def visit(lo: int, hi: int, budget: int, depth: int) -> None:
        values = norm[lo:hi]
        if budget <= 1 or hi - lo <= budget or depth >= depth_limit or _peaky(values, budget, threshold):
            out.append((lo, hi, budget))
            return
        mid = (lo + hi) // 2
        visit(lo, mid, budget - budget // 2, depth + 1)
        visit(mid, hi, budget // 2, depth + 1)

    visit(0, n, k, 0)
    return out


def select_adaptive(
    scores: Sequence[float], k: int, *, threshold: float = 0.3, max_depth: int | None = None
) -> list[int]:
    """AKS adaptive selection: top frames of each segment of ``adaptive_segments``, topped up to ``k``."""
    n = len(scores)
    if k <= 0 or n == 0:
        return []
    if n <= k:
        return list(range(n))
    chosen: set[int] = set()
    for lo, hi, budget in adaptive_segments(scores, k, threshold=threshold, max_depth=max_depth):
        chosen |= set(_top(scores, list(range(lo, hi)), budget))
    return _fill(scores, chosen, k)


def select_uniform_of(scores: Sequence[float], k: int) -> list[int]:
    """The score-blind baseline (``KEYFRAME_SELECTION=uniform``): ``k`` frames evenly spaced, whatever they show."""
    return select_uniform(len(scores), k)


STRATEGIES = {"adaptive": select_adaptive, "bin_top": select_bin_top, "uniform": select_uniform_of}


def select(scores: Sequence[float], k: int, *, strategy: str = "adaptive") -> list[int]:
    try:
        fn = STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"Unknown keyframe selection {strategy!r}; choose one of {sorted(STRATEGIES)}.") from None
    return fn(scores, k)
