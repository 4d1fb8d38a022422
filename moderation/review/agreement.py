"""Inter-rater agreement, computed from first principles (no statistics package).

- Cohen's κ for two raters who labelled the same items: κ = (p_o − p_e) / (1 − p_e), with
  p_o the observed agreement and p_e = Σ_k p_1k·p_2k the agreement expected by chance from each
  rater's own label frequencies (Cohen 1960).
- Krippendorff's α for nominal data, any number of raters, missing values allowed:
  α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k, where o_ck is the coincidence matrix (each
  unit with m_u ≥ 2 values contributes 1/(m_u − 1) for every ordered pair of its values), n_c its
  margins and n the number of pairable values (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from itertools import permutations


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """κ of two raters' labels for the same items (``a[i]`` and ``b[i]`` rate item i).

    ``None`` when undefined: no items, or chance agreement is already perfect (both raters used
    one and the same label for everything).
    """
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    n = len(a)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    p_e = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if p_e == 1:
        return None
    return (p_o - p_e) / (1 - p_e)


def krippendorff_alpha_nominal(units: Iterable[Iterable[Hashable | None]]) -> float | None:
    """α for nominal labels; each unit is the list of values it received (``None`` = missing).

    Units with fewer than two values cannot be paired and are left out. ``None`` when undefined
    (fewer than two pairable values, or only one label used at all).
    """
    coincidence: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for c, k in permutations(values, 2):
            coincidence[(c, k)] += 1 / (m - 1)
    margins: dict[Hashable, float] = defaultdict(float)
    for (c, _k), o in coincidence.items():
        margins[c] += o
    n = sum(margins.values())
    if n <= 1:
        return None
    observed = sum(o for (c, k), o in coincidence.items() if c != k)
    expected = sum(margins[c] * margins[k] for c in margins for k in margins if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected
