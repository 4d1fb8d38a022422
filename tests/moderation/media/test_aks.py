"""AKS keyframe selection as pure functions over scores."""

from __future__ import annotations

import pytest

from moderation.media import aks


def test_uniform_spreads_and_includes_the_ends() -> None:
    assert aks.select_uniform(5, 8) == [0, 1, 2, 3, 4]
    picked = aks.select_uniform(60, 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 59
    assert aks.select_uniform(0, 8) == [] and aks.select_uniform(10, 0) == []


def test_bin_top_covers_every_bin_and_adds_the_global_peaks() -> None:
    scores = [0.0] * 40
    scores[5] = 0.2  # best of bin 0 (0-9)
    scores[33], scores[34], scores[35] = 0.9, 0.95, 0.8  # a salient burst in the last bin
    picked = aks.select_bin_top(scores, 8)

    assert len(picked) == 8
    bins = {i * 40 // 4 for i in range(4)}
    assert all(any(lo <= i < lo + 10 for i in picked) for lo in bins)  # coverage: one per bin
    assert {5, 33, 34, 35} <= set(picked)  # salience: the peaks


def test_bin_top_of_a_short_video_takes_every_frame() -> None:
    assert aks.select_bin_top([0.3, 0.1, 0.2], 8) == [0, 1, 2]


def test_adaptive_keeps_a_peaky_video_whole_and_takes_its_peaks() -> None:
    scores = [0.0] * 64
    for i in (10, 11, 12, 40, 41, 42, 43, 44):
        scores[i] = 1.0
    segments = aks.adaptive_segments(scores, 8, threshold=0.3)

    assert segments == [(0, 64, 8)]  # top-8 mean 1.0 vs mean 0.125: relevance is concentrated, no split
    assert aks.select_adaptive(scores, 8) == [10, 11, 12, 40, 41, 42, 43, 44]


def test_adaptive_splits_a_flat_video_down_to_one_frame_per_segment() -> None:
    scores = [0.5 + 0.01 * (i % 3) for i in range(64)]  # nearly flat: nothing stands out
    segments = aks.adaptive_segments(scores, 8, threshold=0.9)

    assert [b for _, _, b in segments] == [1] * 8
    assert [(lo, hi) for lo, hi, _ in segments] == [(i * 8, i * 8 + 8) for i in range(8)]
    picked = aks.select_adaptive(scores, 8, threshold=0.9)
    assert len(picked) == 8 and all(lo <= p < lo + 8 for p, lo in zip(picked, range(0, 64, 8), strict=True))


def test_adaptive_splits_only_the_flat_half() -> None:
    # First half flat, second half with one sharp peak: the split gives each half 4 frames, the peaky
    # half keeps its budget whole (takes its top 4), the flat half keeps splitting for coverage.
    scores = [0.1] * 32 + [0.1] * 16 + [1.0, 0.9, 0.8, 0.7] + [0.1] * 12
    segments = aks.adaptive_segments(scores, 8, threshold=0.5)

    assert (32, 64, 4) in segments
    assert all(hi <= 32 for lo, hi, b in segments if (lo, hi, b) != (32, 64, 4))
    assert {48, 49, 50, 51} <= set(aks.select_adaptive(scores, 8, threshold=0.5))


def test_all_equal_scores_fall_back_to_uniform() -> None:
    picked = aks.select_adaptive([0.0] * 100, 8)
    assert len(picked) == 8
    gaps = [b - a for a, b in zip(picked, picked[1:], strict=False)]
    assert min(gaps) >= 6  # evenly spread, not bunched at the start


def test_every_strategy_the_readme_offers_selects() -> None:
    """README's KEYFRAME_SELECTION row offers adaptive, bin_top and uniform; `uniform` used to fail every video's
    keyframe stage with "Unknown keyframe selection 'uniform'"."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    offered = re.search(r"`KEYFRAME_SELECTION` \(([^)]*)\)", readme)
    assert offered, "README's Configuration row for KEYFRAME_SELECTION"
    strategies = re.findall(r"`([a-z_]+)`", offered.group(1))
    assert set(strategies) == set(aks.STRATEGIES), strategies
    scores = [0.0] * 30
    scores[29] = 1.0  # a peak uniform spacing ignores
    for strategy in strategies:
        picked = aks.select(scores, 4, strategy=strategy)
        assert len(picked) == 4 and picked == sorted(set(picked)), (strategy, picked)
    assert aks.select(scores, 4, strategy="uniform") == [0, 10, 19, 29]


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown keyframe selection"):
        aks.select([1.0], 1, strategy="random")
